"""What bin/gpu-prepare carries to a GPU machine, and the check bin/gpu-check makes there before anything runs.

A lent GPU machine keeps its own torch and has older transformers, peft and huggingface_hub than ours, and no
network (../shared/GPU.md). Our pins go in front of its packages (pip --target, PYTHONPATH) without
dependencies, so what they need must be carried too or be there already:

- `carry`: transformers, peft and huggingface_hub and everything they need, as this environment has them
  (constraints.txt's pins: the combination the tests ran), torch left out (the machine's CUDA build). Only pure-Python wheels can
  serve the machine's Python 3.12; the binary ones (tokenizers, safetensors, regex, hf-xet, numpy, ...) are
  the machine's, and their requirements are checked against its versions where we know them (MACHINE).
  transformers 5.25 wants huggingface_hub 2.4 or later, which needs httpx2, which the machine lacks: carrying
  transformers alone stopped the check at `import transformers` (found 2026-12-07, before a GPU run).
- `preflight`: on the machine, every requirement of every carried distribution against what Python finds
  there (carried ones first), all failures listed at once, in a second rather than minutes into the check.

lm_eval, dill and chardet are carried without their own requirements: only lm_eval's HFLM is used, and it
imported on the machine with those two beside it (GPU.md).
"""

from __future__ import annotations

import argparse
import importlib.metadata as metadata
import sys

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOTS = ("transformers", "peft", "huggingface-hub")
# Carried at these pins without their own requirements (bin/gpu-prepare adds chardet 5.2.0).
WITHOUT_REQUIREMENTS = ("lm-eval", "dill")
# The machine's own, never carried: its CUDA build of torch, not our CPU one.
MACHINE_OWN = ("torch",)
# Neither carried nor required: transformers imports typer for its command line only and kernels (the Hub's
# kernels) only where asked, and typer 0.29 would need pydantic's binary core, which the machine lacks.
UNUSED = ("typer", "kernels")
# Versions on the lent machines' image ('cuda'), read there 2026-11/12 (GPU.md; the device tool's KINDS.md).
# Their transformers 5.17.0 requires regex>=2025.10.22, click>=8.4.2 and hf-xet>=1.6.0 (its hub's), so those
# are at least that; other binary packages' versions are not known here and are checked on the machine.
MACHINE = {
    "tokenizers": "0.23.2",
    "safetensors": "0.8.0",
    "numpy": "2.5.2",
    "huggingface-hub": "1.33.0",
    "transformers": "5.17.0",
    "peft": "0.21.0",
    "accelerate": "1.15.0",
    "regex": "2025.10.22",
    "hf-xet": "1.6.0",
}

# What bin/gpu-machine installs to play the machine here (with this machine's CPU torch): the packages our
# wheels go in front of, at the machine's versions, and the machine's lack of pydantic, which typer needs.
PLAYED = ("transformers", "peft", "huggingface-hub", "tokenizers", "accelerate", "safetensors")
ABSENT = ("pydantic", "pydantic-core")


def _requirements(dist) -> list[Requirement]:
    """The distribution's requirements that apply here, without extras."""
    out = []
    for line in dist.requires or []:
        requirement = Requirement(line)
        if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
            out.append(requirement)
    return out


def _pure(dist) -> bool:
    """Installed from a wheel that any Python 3 takes (Root-Is-Purelib, every tag py*-none-any)."""
    found = [f for f in dist.files or () if f.name == "WHEEL" and f.parent.name.endswith(".dist-info")]
    wheel = found[0].read_text(encoding="utf-8") if found else ""
    tags = [line.split(":", 1)[1].strip() for line in wheel.splitlines() if line.startswith("Tag:")]
    return "Root-Is-Purelib: true" in wheel and bool(tags) and all(tag.endswith("-none-any") for tag in tags)


def closure(roots=ROOTS) -> dict[str, metadata.Distribution]:
    """canonical name -> installed distribution: the roots and everything they need, torch's tree left out."""
    found: dict[str, metadata.Distribution] = {}
    stack = [canonicalize_name(name) for name in roots]
    while stack:
        name = stack.pop()
        if name in found or name in (*MACHINE_OWN, *UNUSED):
            continue
        found[name] = metadata.distribution(name)
        stack.extend(canonicalize_name(r.name) for r in _requirements(found[name]))
    return found


def carry() -> tuple[list[str], list[str]]:
    """(pins of the pure-Python wheels to carry, problems): a binary distribution in the closure whose
    requirements the machine's known version does not meet is a problem here, before any device time."""
    dists = closure()
    pins = [f"{dist.metadata['Name']}=={dist.version}" for name, dist in sorted(dists.items()) if _pure(dist)]
    pins += [f"{name}=={metadata.version(name)}" for name in WITHOUT_REQUIREMENTS if name not in dists]
    binary = {name for name, dist in dists.items() if not _pure(dist)}
    problems = []
    for dist in dists.values():
        for requirement in _requirements(dist):
            name = canonicalize_name(requirement.name)
            if name in binary and name in MACHINE and not requirement.specifier.contains(MACHINE[name], True):
                problems.append(
                    f"{dist.metadata['Name']} {dist.version} needs {requirement}; the GPU machine has "
                    f"{name} {MACHINE[name]}, a binary package that cannot be carried from here"
                )
    return pins, problems


def preflight(carried: list[str], path: list[str] | None = None) -> list[str]:
    """Every unmet requirement of the distributions in the `carried` folders, as Python finds them on `path`
    (sys.path by default, on which the carried folder comes first)."""
    problems = []
    for dist in metadata.distributions(path=carried):
        if canonicalize_name(dist.metadata["Name"]) in (*WITHOUT_REQUIREMENTS, "chardet"):
            continue
        for requirement in _requirements(dist):
            if canonicalize_name(requirement.name) in UNUSED:
                continue
            there = next(metadata.distributions(name=requirement.name, path=path or sys.path), None)
            if there is None:
                problems.append(f"{dist.metadata['Name']} {dist.version} needs {requirement}: not installed")
            elif not requirement.specifier.contains(Version(there.version), prereleases=True):
                problems.append(
                    f"{dist.metadata['Name']} {dist.version} needs {requirement}; found {there.version}"
                )
    return problems


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("carry", help="print the pins to download, one a line (bin/gpu-prepare)")
    commands.add_parser(
        "machine", help="print the machine's pins to play it here, one a line (bin/gpu-machine)"
    )
    check = commands.add_parser("preflight", help="check the carried folder's requirements (bin/gpu-check)")
    check.add_argument("folder")
    args = parser.parse_args(argv)
    if args.command == "carry":
        pins, problems = carry()
        print("\n".join(pins))
    elif args.command == "machine":
        print("\n".join(f"{name}=={MACHINE[name]}" for name in PLAYED))
        return 0
    else:
        problems = preflight([args.folder])
        if not problems:
            count = len(list(metadata.distributions(path=[args.folder])))
            print(f"gpu_carry: {count} carried distributions, every requirement of theirs met here")
    for problem in problems:
        print(f"gpu_carry: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
