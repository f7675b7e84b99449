"""Java: Maven (pom.xml), or Gradle (build.gradle, with its wrapper when the repository has one). The local
repository and Gradle's home live in the workspace, which Drone shares between steps, so the test step
does not download every dependency again."""

from __future__ import annotations

from opsbot.gitops.templates.base import Template, Toolchain

MAVEN = "mvn -B -Dmaven.repo.local=.m2/repository"


def toolchain(files: set[str]) -> Toolchain:
    if "pom.xml" in files or not {"build.gradle", "build.gradle.kts"} & files:
        return Toolchain(
            image="maven:3.9-eclipse-temurin-17", build=(f"{MAVEN} -DskipTests package",), test=(f"{MAVEN} test",)
        )
    gradle = ("./gradlew" if "gradlew" in files else "gradle") + " --no-daemon -g .gradle"
    return Toolchain(image="gradle:8.10-jdk17", build=(f"{gradle} assemble",), test=(f"{gradle} test",))


TEMPLATE = Template("java", ("pom.xml", "build.gradle", "build.gradle.kts"), toolchain)
