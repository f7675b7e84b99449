"""Reading and writing the image in a deploy repo's file, per format, keeping everything else as it was: comments,
key order, quoting, indentation and the other documents of the file (ruamel.yaml's round trip; PyYAML would drop
comments and re-order nothing but reformat everything).

- kustomize: the `images:` entry whose `name` (or `newName`) is the image: `newTag`, or `digest` when pinned by
  digest (an entry is added when the overlay has none);
- helm: a key path in the values (`image.tag`, or a versions file's `shop-web.version`): the tag;
- manifest: a Deployment's container (by name, else its first): `image: <repo>:<tag>` or `<repo>@<digest>`.

ruamel.yaml is imported here only, and this module only by the worker's release and status jobs.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

from opsbot.config.deploy import GitOpsTarget


class FormatError(Exception):
    """The file cannot be read or changed as its format says; the message says where and why."""


@dataclass(frozen=True)
class Pinned:
    """The image a file names: its repository, and the tag and/or digest it is pinned to."""

    repository: str
    tag: str = ""
    digest: str = ""

    @property
    def reference(self) -> str:
        return self.repository + (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")

    @property
    def version(self) -> str:
        """What a person calls it: the tag, else the digest's start."""
        return self.tag or self.digest[:19]


def split_reference(reference: str) -> Pinned:
    """`repo[:tag][@digest]` → its parts (a registry's port is not a tag)."""
    rest, _, digest = reference.partition("@")
    repository, tag = rest, ""
    if ":" in rest.rsplit("/", 1)[-1]:
        repository, tag = rest.rsplit(":", 1)
    return Pinned(repository, tag, digest)


def _yaml(text: str):
    from ruamel.yaml import YAML
    from ruamel.yaml.util import load_yaml_guess_indent

    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap a long line
    try:
        _data, sequence, offset = load_yaml_guess_indent(text)  # how its lists are indented: `- a` or `  - a`
    except Exception:  # noqa: BLE001 - read again by _load, which reports the error
        sequence, offset = None, None
    yaml.indent(mapping=2, sequence=sequence or 2, offset=offset or 0)
    return yaml


def _load(text: str) -> tuple[object, list]:
    from ruamel.yaml.error import YAMLError

    yaml = _yaml(text)
    try:
        documents = list(yaml.load_all(text))
    except YAMLError as exc:
        raise FormatError(f"not YAML: {str(exc).splitlines()[0][:200]}") from None
    return yaml, documents


def _dump(yaml, documents: list, text: str) -> str:
    out = io.StringIO()
    if len(documents) == 1 and not text.lstrip().startswith("---"):
        yaml.dump(documents[0], out)
    else:
        yaml.explicit_start = text.lstrip().startswith("---")
        yaml.dump_all(documents, out)
    return out.getvalue()


def _like(old, new: str):
    """`new` in the quoting `old` had, for a value ruamel writes itself (a key opsbot adds)."""
    from ruamel.yaml.scalarstring import DoubleQuotedScalarString, SingleQuotedScalarString

    for kind in (DoubleQuotedScalarString, SingleQuotedScalarString):
        if isinstance(old, kind):
            return kind(new)
    return new


def _stays_text(value: str) -> bool:
    """Whether `value` written plain is read back as this text (not a number, a date, a boolean or null)."""
    import yaml  # PyYAML reads YAML 1.1, which takes more plain words for non-strings than 1.2: the safer test

    try:
        return yaml.safe_load(value) == value and not value.startswith(("*", "&", "!", "%", "@", "`", "- "))
    except yaml.YAMLError:
        return False


_PLAIN = re.compile(r"[^\s,\]\}#'\"][^,\]\}\r\n]*?(?=[ \t]+#|[ \t]*[,\]\}]|[ \t]*\r?\n|[ \t]*$)")


def _replace_token(line: str, column: int, value: str) -> str:
    """`line` with the scalar that starts at `column` replaced by `value`, in the same quoting where it can be."""
    rest = line[column:]
    if rest[:1] in ('"', "'"):
        quote, end = rest[0], 1
        while end < len(rest):
            if rest[end] == "\\" and quote == '"':
                end += 2
                continue
            if rest[end] == quote:
                if quote == "'" and rest[end + 1 : end + 2] == "'":
                    end += 2
                    continue
                break
            end += 1
        return line[:column] + f"{quote}{value}{quote}" + rest[end + 1 :]
    found = _PLAIN.match(rest)
    if found is None:
        raise FormatError(f"line {line.strip()[:80]!r}: the value is not a plain or quoted scalar")
    token = value if _stays_text(value) else f"'{value}'"
    return line[:column] + token + rest[found.end() :]


def _is_scalar(value) -> bool:
    return value is not None and not isinstance(value, (dict, list))


def _apply(text: str, yaml, documents: list, sets: list[tuple], removes: list[tuple] = ()) -> str:
    """Set each (mapping, key, value) and drop each (mapping, key). When only scalars that are there change, the
    text is edited in place, token by token, so the rest of the file is byte for byte what it was; a change of
    structure (a key or an entry added or removed) goes through ruamel's round trip."""
    if not removes and all(key in mapping and _is_scalar(mapping[key]) for mapping, key, _value in sets):
        lines = text.splitlines(keepends=True)
        for mapping, key, value in sorted(sets, key=lambda s: s[0].lc.value(s[1]), reverse=True):
            line, column = mapping.lc.value(key)
            lines[line] = _replace_token(lines[line], column, value)
        return "".join(lines)
    for mapping, key, value in sets:
        mapping[key] = _like(mapping.get(key), value)
    for mapping, key in removes:
        mapping.pop(key, None)
    return _dump(yaml, documents, text)


def read(target: GitOpsTarget, text: str) -> Pinned | None:
    """The image the file pins now; None when the file does not name it (yet)."""
    _yaml_, documents = _load(text)
    return _READERS[target.format](target, documents)


def write(target: GitOpsTarget, text: str, tag: str, digest: str = "") -> str:
    """The file's text with the image pinned to `tag` (or `digest`, when the target pins by digest and one is known),
    and nothing else changed."""
    yaml, documents = _load(text)
    digest = digest if target.pin == "digest" else ""
    written = _WRITERS[target.format](target, documents, tag, digest, text, yaml)
    pinned = read(target, written)
    if pinned is None or (pinned.digest != digest if digest else pinned.tag != tag):
        raise FormatError("the file does not read back as written")  # a bug, or a file this edit cannot handle
    return written


# --- kustomize -----------------------------------------------------------------------------------------------------


def _kustomization(documents: list) -> dict:
    if len(documents) != 1 or not isinstance(documents[0], dict):
        raise FormatError("a kustomization is one YAML mapping")
    return documents[0]


def _image_entry(target: GitOpsTarget, root: dict):
    images = root.get("images")
    if images is None:
        return None
    if not isinstance(images, list):
        raise FormatError("images: is not a list")
    for entry in images:
        if isinstance(entry, dict) and target.image in (entry.get("name"), entry.get("newName")):
            return entry
    return None


def _read_kustomize(target: GitOpsTarget, documents: list) -> Pinned | None:
    entry = _image_entry(target, _kustomization(documents))
    if entry is None:
        return None
    return Pinned(
        str(entry.get("newName") or entry.get("name")), str(entry.get("newTag") or ""), str(entry.get("digest") or "")
    )


def _write_kustomize(target: GitOpsTarget, documents: list, tag: str, digest: str, text: str, yaml) -> str:
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    root = _kustomization(documents)
    entry = _image_entry(target, root)
    if entry is None:
        if root.get("images") is None:
            root["images"] = CommentedSeq()
        entry = CommentedMap(name=target.image)
        root["images"].append(entry)
    # The digest alone is the pin (a tag beside it could only disagree), and a tag alone when there is no digest.
    key, other, value = ("digest", "newTag", digest) if digest else ("newTag", "digest", tag)
    return _apply(text, yaml, documents, [(entry, key, value)], [(entry, other)] if other in entry else [])


# --- helm values (and any YAML of versions) ------------------------------------------------------------------------


def _values(documents: list) -> dict:
    if len(documents) != 1 or not isinstance(documents[0], dict):
        raise FormatError("the values are one YAML mapping")
    return documents[0]


def _read_helm(target: GitOpsTarget, documents: list) -> Pinned | None:
    node = _values(documents)
    for part in target.key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    if node is None or isinstance(node, (dict, list)):
        return None
    return Pinned(target.image, str(node))


def _write_helm(target: GitOpsTarget, documents: list, tag: str, _digest: str, text: str, yaml) -> str:
    from ruamel.yaml.comments import CommentedMap

    node = _values(documents)
    *parents, last = target.key.split(".")
    for part in parents:
        if node.get(part) is None:
            node[part] = CommentedMap()
        node = node[part]
        if not isinstance(node, dict):
            raise FormatError(f"{target.key}: '{part}' is not a mapping")
    if isinstance(node.get(last), (dict, list)):
        raise FormatError(f"{target.key} is a {type(node[last]).__name__}, not a tag")
    return _apply(text, yaml, documents, [(node, last, tag)])


# --- a plain manifest ----------------------------------------------------------------------------------------------


def _container(target: GitOpsTarget, documents: list):
    for document in documents:
        if not isinstance(document, dict) or document.get("kind") not in ("Deployment", "StatefulSet", "DaemonSet"):
            continue
        containers = (((document.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers")
        if not isinstance(containers, list) or not containers:
            continue
        for container in containers:
            if isinstance(container, dict) and (not target.container or container.get("name") == target.container):
                return container
    where = f"container '{target.container}'" if target.container else "a container"
    raise FormatError(f"no Deployment with {where} in the manifest")


def _read_manifest(target: GitOpsTarget, documents: list) -> Pinned | None:
    image = _container(target, documents).get("image")
    return split_reference(str(image)) if image else None


def _write_manifest(target: GitOpsTarget, documents: list, tag: str, digest: str, text: str, yaml) -> str:
    container = _container(target, documents)
    reference = f"{target.image}@{digest}" if digest else f"{target.image}:{tag}"
    return _apply(text, yaml, documents, [(container, "image", reference)])


_READERS = {"kustomize": _read_kustomize, "helm": _read_helm, "manifest": _read_manifest}
_WRITERS = {"kustomize": _write_kustomize, "helm": _write_helm, "manifest": _write_manifest}
