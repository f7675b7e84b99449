"""README.md and README.zh-CN.md are twins: the same `##` sections in the same order (each Chinese heading carries the
English heading's anchor, `<a id="…"></a>` on the line before it), the same generated blocks, each in its own
language and exactly what the generators make now, and first screens that show what opsbot does, the two pictures
and the two commands.

A section added to README.md needs its Chinese twin: the failure says which one, and after which section it goes
(the README's Tests section shows how)."""

from __future__ import annotations

import re

import pytest
from unit_support import ROOT

from opsbot import readme_blocks
from opsbot.chat import reference as chat_reference
from opsbot.config import reference as config_reference
from opsbot.review import reference as review_reference

ENGLISH, CHINESE = ROOT / "README.md", ROOT / "README.zh-CN.md"
GENERATORS = (chat_reference, review_reference, config_reference)
FIRST_SCREEN = 30  # lines
IMAGES = ("docs/card.png", "docs/release-page.png")
MAX_IMAGE_BYTES = 150_000
ANCHOR = re.compile(r'^<a id="([a-z0-9-]+)"></a>$')


@pytest.fixture
def aws(_moto):
    yield None  # nothing here reaches AWS


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def outside_code(text: str) -> list[str]:
    """The lines of a markdown text, with fenced code blocks blanked (a `## ` in code is no heading)."""
    lines, fenced = [], False
    for line in text.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
            lines.append("")
        else:
            lines.append("" if fenced else line)
    return lines


def english_sections(text: str) -> list[tuple[str, str]]:
    """Each `##` section of the English README: (anchor, heading)."""
    return [(slug(line[3:]), line[3:]) for line in outside_code(text) if line.startswith("## ")]


def chinese_sections(text: str) -> list[tuple[str, str]]:
    """Each `##` section of the Chinese README: (the English anchor it declares, its heading); a heading without
    an `<a id>` line right before it (blank lines aside) declares "" (none)."""
    sections, lines = [], outside_code(text)
    for index, line in enumerate(lines):
        if not line.startswith("## "):
            continue
        before = next((lines[i] for i in range(index - 1, -1, -1) if lines[i].strip()), "")
        found = ANCHOR.match(before.strip())
        sections.append((found.group(1) if found else "", line[3:]))
    return sections


def twin_problems(english: str, chinese: str) -> list[str]:
    """What keeps the Chinese README from having the English one's sections, in order: each missing, unanchored,
    extra or misplaced section named, with where it belongs."""
    wanted, found = english_sections(english), chinese_sections(chinese)
    problems = [
        f"README.zh-CN.md: the section '## {heading}' has no <a id=\"…\"></a> line before it"
        for anchor, heading in found
        if not anchor
    ]
    found_anchors = [anchor for anchor, _ in found if anchor]
    wanted_anchors = [anchor for anchor, _ in wanted]
    for position, (anchor, heading) in enumerate(wanted):
        if anchor not in found_anchors:
            after = f'after the section <a id="{wanted_anchors[position - 1]}">' if position else "first"
            problems.append(
                f"README.zh-CN.md lacks the section '## {heading}': add <a id=\"{anchor}\"></a> and a Chinese "
                f"'## …' heading under it, {after}"
            )
    for anchor in found_anchors:
        if anchor not in wanted_anchors:
            problems.append(f"README.zh-CN.md has a section <a id=\"{anchor}\"> that README.md has no '##' for")
    common = [anchor for anchor in found_anchors if anchor in wanted_anchors]
    if not problems and common != wanted_anchors:
        problems.append(f"README.zh-CN.md's sections are in another order: {common}, not {wanted_anchors}")
    return problems


def test_the_chinese_readme_has_every_section_of_the_english_one_in_order():
    problems = twin_problems(ENGLISH.read_text(encoding="utf-8"), CHINESE.read_text(encoding="utf-8"))
    assert problems == [], "\n".join(problems)


def test_the_check_names_the_section_the_chinese_readme_lacks():
    english = "# x\n\n## The two commands\n\ntext\n\n## Tests\n\n```\n## not a heading\n```\n\n## What is missing\n"
    chinese = '# x\n\n<a id="the-two-commands"></a>\n## 两条命令\n\n<a id="what-is-missing"></a>\n## 尚未完成\n'
    assert twin_problems(english, chinese) == [
        "README.zh-CN.md lacks the section '## Tests': add <a id=\"tests\"></a> and a Chinese '## …' heading "
        'under it, after the section <a id="the-two-commands">'
    ]
    unanchored = chinese.replace('<a id="what-is-missing"></a>\n', "")
    assert "'## 尚未完成' has no <a id" in twin_problems(english, unanchored)[0]
    swapped = (
        '<a id="what-is-missing"></a>\n## 尚未完成\n<a id="tests"></a>\n## 测试\n'
        '<a id="the-two-commands"></a>\n## 两条命令\n'
    )
    assert "in another order" in twin_problems(english, swapped)[0]
    assert twin_problems(english, chinese.replace("## 尚未完成", '## 尚未完成\n<a id="tests"></a>\n## 测试')) == [
        "README.zh-CN.md's sections are in another order: "
        "['the-two-commands', 'what-is-missing', 'tests'], not ['the-two-commands', 'tests', 'what-is-missing']"
    ]


def test_anchors_are_githubs():
    assert slug("Performance: `make bench`") == "performance-make-bench"
    assert slug("Merge-request commands") == "merge-request-commands"
    assert slug("The two commands") == "the-two-commands"


@pytest.mark.parametrize("generator", GENERATORS, ids=lambda g: g.__name__)
@pytest.mark.parametrize("readme", [ENGLISH, CHINESE], ids=lambda p: p.name)
def test_each_generated_block_is_what_its_generator_makes_now(generator, readme):
    language = readme_blocks.language_of(readme)
    block = readme_blocks.block_in(readme.read_text(encoding="utf-8"), generator.START, generator.END)
    assert block is not None, f"{readme.name} has no {generator.START} block"
    assert block == generator.markdown(language), (
        f"{readme.name}'s block from {generator.__name__} is stale: run `make references`"
    )


def test_the_blocks_are_in_each_readmes_language():
    assert readme_blocks.READMES == {"README.md": "en", "README.zh-CN.md": "zh"}
    assert [readme_blocks.language_of(p) for p in (ENGLISH, CHINESE)] == ["en", "zh"]
    for generator in GENERATORS:
        english, chinese = generator.markdown("en"), generator.markdown("zh")
        assert english != chinese
        assert re.search(r"[\u4e00-\u9fff]", chinese.splitlines()[0]), "the Chinese table's header is Chinese"
        assert english.count("\n") == chinese.count("\n"), "a row in each language for each entry"


@pytest.mark.parametrize("readme", [ENGLISH, CHINESE], ids=lambda p: p.name)
def test_the_first_screen_shows_what_it_does_the_pictures_and_the_two_commands(readme):
    screen = "\n".join(readme.read_text(encoding="utf-8").splitlines()[:FIRST_SCREEN])
    assert "opsbot" in screen and ("DingTalk" in screen or "钉钉" in screen)
    for command in ("make run", "make test"):
        assert command in screen, f"{readme.name}: `{command}` is not in the first {FIRST_SCREEN} lines"
    for image in IMAGES:
        assert f'src="{image}"' in screen or f"]({image})" in screen, (
            f"{readme.name}: {image} is not in the first {FIRST_SCREEN} lines"
        )
    twin = CHINESE.name if readme == ENGLISH else ENGLISH.name
    assert f"({twin})" in screen, f"{readme.name}'s first screen does not link to {twin}"


@pytest.mark.parametrize("image", IMAGES)
def test_the_pictures_exist_and_are_small(image):
    path = ROOT / image
    assert path.is_file(), f"{image} is missing: run `make docs-images`"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{image} is not a PNG"
    assert path.stat().st_size < MAX_IMAGE_BYTES, f"{image} is {path.stat().st_size} bytes: keep it under 150 KB"


def test_every_table_in_the_chinese_readme_renders_as_one_table():
    from test_readme import table_problems

    assert table_problems(CHINESE.read_text(encoding="utf-8")) == []
