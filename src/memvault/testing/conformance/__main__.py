"""``python -m memvault.testing.conformance``: list the kit's checks (name, faces, capability, what it checks)."""

from __future__ import annotations

from memvault.testing.conformance import checks


def main() -> None:
    found = checks()
    for chk in found:
        needs = f" [needs {chk.requires}]" if chk.requires else ""
        faces = "" if len(chk.faces) == 2 else f" [{'+'.join(chk.faces)} only]"
        print(f"{chk.name}{needs}{faces}\n    {chk.doc}")
    print(f"{len(found)} checks")


if __name__ == "__main__":
    main()
