#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (fuzz/corpus/<target>/) from the project's
fixtures: the shipped workflows/, the broken workflows of tests/cases/validate/ (laid over
its _base/, as the validation tests do) and the lines of events/sample.jsonl.

Run from anywhere: fuzz/seeds.py. It replaces the seed folders; review the diff."""

import hashlib
import json
import pathlib
import shutil

ROOT = pathlib.Path(__file__).resolve().parent.parent
CORPUS = ROOT / "fuzz" / "corpus"
CASES = ROOT / "tests" / "cases" / "validate"


def files_under(folder, prefix=""):
    """{relative name: bytes} of every file under folder."""
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            out[prefix + p.relative_to(folder).as_posix()] = p.read_bytes()
    return out


def project(files):
    """A load_project input: each file under a `==> NAME <==` header."""
    parts = []
    for name, body in files.items():
        if not body.endswith(b"\n"):
            body += b"\n"
        parts.append(b"==> " + name.encode() + b" <==\n" + body)
    return b"".join(parts)


def write(target, seeds):
    folder = CORPUS / target
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for seed in seeds:
        name = hashlib.sha1(seed).hexdigest()[:16]
        (folder / name).write_bytes(seed)
    print(f"{target}: {len(set(seeds))} seeds")


def load_project_seeds():
    seeds = []
    shipped = ROOT / "workflows"
    settings = (shipped / "settings.yaml").read_bytes()
    for wf in sorted(shipped.glob("*.yaml")):
        if wf.name == "settings.yaml":
            continue
        files = {"settings.yaml": settings, wf.name: wf.read_bytes()}
        files.update(files_under(shipped / "templates" / wf.stem, f"templates/{wf.stem}/"))
        seeds.append(project(files))
    base = files_under(CASES / "_base")
    for case in sorted(CASES.iterdir()):
        if case.name.startswith("_") or case.suffix == ".expected":
            continue
        files = dict(base)
        if case.is_dir():
            files.update(files_under(case))
        else:
            files[case.name] = case.read_bytes()
        seeds.append(project(files))
    return seeds


def template_texts():
    """Every template, and every expression and template scalar of the workflows."""
    texts = []
    for folder in [ROOT / "workflows", CASES]:
        for p in sorted(folder.rglob("*")):
            if p.suffix in (".mjml", ".html"):
                texts.append(p.read_bytes())
            elif p.suffix == ".yaml":
                for line in p.read_text().splitlines():
                    key, sep, value = line.strip().lstrip("- ").partition(": ")
                    if sep and key in ("if", "when", "key", "subject", "preheader", "body"):
                        texts.append(value.strip().strip("\"'").encode())
    # Regressions: what the fuzzers found (a name after a multi-byte character; a broken
    # Outlook conditional comment).
    texts += [b"\xc3\xa9 {{ custmer }}", b"<!--[if--><mjml"]
    return texts


def event_lines():
    lines = (ROOT / "events" / "sample.jsonl").read_bytes().splitlines()
    return lines


def events_file_seeds(lines):
    """A few small events files: a customer's lines together, and some broken lines."""
    by_customer = {}
    for line in lines:
        cid = json.loads(line)["detail"]["customer"]["id"]
        by_customer.setdefault(cid, []).append(line)
    seeds = [b"\n".join(ls[:6]) + b"\n" for _, ls in sorted(by_customer.items())[:12]]
    seeds.append(b"\xef\xbb\xbf" + lines[0] + b"\r\n" + b"{not json\r\n" + lines[1] + b"\r\n")
    seeds.append(lines[0] + b"\n\xff\xfe bad bytes\n" + lines[2] + b"\n" + lines[0] + b"\n")
    # Regression: a rejected line far in the future set simulate's default end.
    seeds.append(lines[0] + b'\n{"id": "x", "time": "4385-01-01T00:00:00Z"}\n')
    return seeds


def main():
    write("load_project", load_project_seeds())
    write("check_template", template_texts())
    lines = event_lines()
    write("parse_event", lines[:40] + [b"", b"{}", b"[]", b'{"id": 1}'])
    write("events_file", events_file_seeds(lines))


if __name__ == "__main__":
    main()
