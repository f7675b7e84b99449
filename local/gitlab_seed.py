"""What the local stack's fake GitLab starts with: the config repo (the files of the config directory the
stack loads) and the example projects' repositories, without a .drone.yml, so `drone init` has work to do:
shop/shop-api (Maven; with OWNERS files for merge-request review), shop/shop-web (npm), shop/shop-recommend
(pip + pytest), shop/shop-search (Maven). The deploy repo is local/deploy_seed.py's. The fake's users are in
local/fake_gitlab_mr.py."""

from __future__ import annotations

from pathlib import Path

SHOP_API = {
    "pom.xml": """<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
         xsi:schemaLocation="http://maven.apache.org/POM/4.0.0 https://maven.apache.org/xsd/maven-4.0.0.xsd">
  <modelVersion>4.0.0</modelVersion>
  <parent>
    <groupId>org.springframework.boot</groupId>
    <artifactId>spring-boot-starter-parent</artifactId>
    <version>3.3.5</version>
  </parent>
  <groupId>com.example.shop</groupId>
  <artifactId>shop-api</artifactId>
  <version>1.0.0-SNAPSHOT</version>
  <properties>
    <java.version>17</java.version>
  </properties>
  <dependencies>
    <dependency>
      <groupId>org.springframework.boot</groupId>
      <artifactId>spring-boot-starter-web</artifactId>
    </dependency>
    <dependency>
      <groupId>org.springframework.boot</groupId>
      <artifactId>spring-boot-starter-test</artifactId>
      <scope>test</scope>
    </dependency>
  </dependencies>
</project>
""",
    "Dockerfile": (
        'FROM eclipse-temurin:17-jre\nCOPY target/shop-api-*.jar /app.jar\nENTRYPOINT ["java", "-jar", "/app.jar"]\n'
    ),
    "src/main/java/com/example/shop/ShopApiApplication.java": """package com.example.shop;

import org.springframework.boot.SpringApplication;
import org.springframework.boot.autoconfigure.SpringBootApplication;

@SpringBootApplication
public class ShopApiApplication {
    public static void main(String[] args) {
        SpringApplication.run(ShopApiApplication.class, args);
    }
}
""",
    "README.md": "# shop-api\n\nThe shop's order and payment API.\n",
    # Who reviews and approves (merge-request automation, opsbot.review): the root file owns everything,
    # docs/OWNERS adds its own people for docs/.
    "OWNERS": "approvers: [carol]\nreviewers: [bob, dave]\n",
    "docs/OWNERS": "approvers: [erin]\nreviewers: [erin]\n",
    "docs/orders.md": "# Orders\n\nHow an order moves from cart to delivery.\n",
}

SHOP_WEB = {
    "package.json": """{
  "name": "shop-web",
  "version": "1.0.0",
  "private": true,
  "scripts": {
    "build": "vite build",
    "test": "vitest run"
  },
  "dependencies": {
    "vue": "^3.5.12"
  },
  "devDependencies": {
    "vite": "^5.4.10",
    "vitest": "^2.1.4"
  }
}
""",
    "package-lock.json": (
        '{\n  "name": "shop-web",\n  "version": "1.0.0",\n  "lockfileVersion": 3,\n  "requires": true,\n'
        '  "packages": {}\n}\n'
    ),
    "Dockerfile": "FROM nginx:1.27-alpine\nCOPY dist/ /usr/share/nginx/html/\n",
    "src/main.js": "import { createApp } from 'vue'\nimport App from './App.vue'\n\ncreateApp(App).mount('#app')\n",
    "README.md": "# shop-web\n\nThe shop's storefront.\n",
}

SHOP_RECOMMEND = {
    "pyproject.toml": """[project]
name = "shop-recommend"
version = "1.0.0"
requires-python = ">=3.12"
dependencies = ["fastapi>=0.115", "uvicorn>=0.32"]
""",
    "requirements.txt": "fastapi==0.115.4\nuvicorn==0.32.0\n",
    "Dockerfile": "FROM python:3.12-slim\nCOPY . /app\nRUN pip install --no-cache-dir /app\n"
    'CMD ["uvicorn", "recommend.app:app", "--host", "0.0.0.0"]\n',
    "recommend/__init__.py": "",
    "recommend/app.py": 'from fastapi import FastAPI\n\napp = FastAPI()\n\n\n@app.get("/health")\ndef health():\n'
    '    return {"ok": True}\n',
    "tests/test_health.py": "from fastapi.testclient import TestClient\n\nfrom recommend.app import app\n\n\n"
    'def test_health():\n    assert TestClient(app).get("/health").json() == {"ok": True}\n',
    "README.md": "# shop-recommend\n\nProduct recommendations.\n",
}

SHOP_SEARCH = {
    "pom.xml": SHOP_API["pom.xml"].replace("shop-api", "shop-search"),
    "Dockerfile": SHOP_API["Dockerfile"].replace("shop-api", "shop-search"),
    "README.md": "# shop-search\n\nProduct search.\n",
}

PROJECTS = {
    "shop/shop-api": SHOP_API,
    "shop/shop-web": SHOP_WEB,
    "shop/shop-recommend": SHOP_RECOMMEND,
    "shop/shop-search": SHOP_SEARCH,
}


def config_repo_files(config_dir: str | Path) -> dict[str, str]:
    """The config repo holds the config directory as it is: opsbot.yaml and projects/*.yaml."""
    root = Path(config_dir)
    files = {"README.md": "# opsbot config\n\nPushes to main are validated and synced into opsbot.\n"}
    for path in [root / "opsbot.yaml", *sorted((root / "projects").glob("*.y*ml"))]:
        if path.is_file():
            files[path.relative_to(root).as_posix()] = path.read_text(encoding="utf-8")
    return files
