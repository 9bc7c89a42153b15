"""Checks the book's sources: every Rust block is an include of a compiled
sample, every include names a file and an anchor that exist, and every
internal link points at a file of the book."""

import pathlib
import re
import sys

book = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "book")
src = book / "src"
errors = []

fence = re.compile(r"^```(\S*)")
include = re.compile(r"\{\{#include\s+([^}:\s]+)(?::([A-Za-z0-9_-]+))?\s*\}\}")
link = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")

summary = (src / "SUMMARY.md").read_text()
listed = {str((src / m).resolve()) for m in re.findall(r"\]\(([^)]+\.md)\)", summary)}

for page in sorted(src.rglob("*.md")):
    rel = page.relative_to(book)
    if page.name != "SUMMARY.md" and str(page.resolve()) not in listed:
        errors.append(f"{rel}: not listed in SUMMARY.md")
    lines = page.read_text().splitlines()
    in_block, lang, block = False, "", []
    for number, line in enumerate(lines, 1):
        match = fence.match(line.strip())
        if match and not in_block:
            in_block, lang, block, start = True, match.group(1), [], number
            continue
        if line.strip().startswith("```") and in_block:
            in_block = False
            if lang.split(",")[0] == "rust":
                body = [b for b in block if b.strip()]
                if not body or not all(include.fullmatch(b.strip()) for b in body):
                    errors.append(
                        f"{rel}:{start}: a Rust block must only include a sample "
                        "from book/samples (which cargo test compiles and runs)"
                    )
            continue
        if in_block:
            block.append(line)
            for target, anchor in include.findall(line):
                path = (page.parent / target).resolve()
                if not path.exists():
                    errors.append(f"{rel}:{number}: include {target} does not exist")
                elif anchor:
                    text = path.read_text()
                    if f"ANCHOR: {anchor}" not in text or f"ANCHOR_END: {anchor}" not in text:
                        errors.append(f"{rel}:{number}: {target} has no anchor {anchor}")
            continue
        for target in link.findall(line):
            if re.match(r"^[a-z]+:", target) or target.startswith("#"):
                continue
            path_part = target.split("#", 1)[0]
            path = (page.parent / path_part).resolve()
            if not path.exists():
                errors.append(f"{rel}:{number}: link {target} does not resolve")
    if in_block:
        errors.append(f"{rel}: a code block is not closed")

if errors:
    print("\n".join(errors), file=sys.stderr)
    sys.exit(1)
print(f"book sources checked: {len(list(src.rglob('*.md')))} pages")
