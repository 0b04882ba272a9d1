"""Command line: ``llmrecbench provenance FILE`` prints the chain of rules and files behind FILE;
``llmrecbench rescore`` recomputes a text cell; ``llmrecbench readme`` re-renders the README's tables.

The chain is read from Snakemake's own per-output records (``.snakemake/metadata/``: rule,
inputs, params, log, start/end time, the cluster job id when run under SLURM, input checksums),
walked from the given file back to the raw downloads, with each file's sha256. For a table
cell it also prints the cell's provenance manifest (config hash, code revision, packages).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import sys
from pathlib import Path

from llmrecbench.provenance import snakemake_metadata


def _metadata(workdir: Path, path: str) -> dict | None:
    return snakemake_metadata(workdir, path)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _when(ts: float | None) -> str:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC") if ts else "?"


def provenance_chain(target: str, workdir: Path) -> list[str]:
    """Lines of an indented tree: each file, the rule that made it, and that rule's inputs."""
    lines: list[str] = []
    seen: set[str] = set()

    def walk(path: str, depth: int) -> None:
        pad = "  " * depth
        f = workdir / path
        digest = _sha256(f)[:16] if f.is_file() else ("directory" if f.is_dir() else "MISSING")
        if path in seen:
            lines.append(f"{pad}{path}  [sha256 {digest}…]  (see above)")
            return
        seen.add(path)
        lines.append(f"{pad}{path}  [sha256 {digest}…]")
        meta = _metadata(workdir, path)
        if meta is None:
            lines.append(f"{pad}  <- not recorded by Snakemake in {workdir} (source file)")
            return
        took = (meta.get("endtime") or 0) - (meta.get("starttime") or 0)
        job = f", cluster job {meta['external_jobid']}" if meta.get("external_jobid") else ""
        lines.append(
            f"{pad}  <- rule {meta['rule']} at {_when(meta.get('starttime'))} ({took:.1f} s{job})"
            + (f", log {', '.join(meta['log'])}" if meta.get("log") else "")
        )
        for inp in meta.get("input", []):
            walk(inp, depth + 2)

    walk(target, 0)
    cell = workdir / target
    if cell.suffix == ".json" and cell.is_file():
        try:
            content = json.loads(cell.read_text())
        except json.JSONDecodeError:
            content = {}
        manifest_path = content.get("provenance") if isinstance(content, dict) else None
        if manifest_path and (workdir / manifest_path).is_file():
            manifest = json.loads((workdir / manifest_path).read_text())
            lines.append(f"manifest {manifest_path}:")
            lines.append(f"  config sha256 {manifest.get('config_sha256')}")
            lines.append(f"  code {manifest.get('code')}")
            lines.append(f"  packages {manifest.get('packages')}")
            lines.append(f"  machine {manifest.get('machine')}")
    return lines


def _rescore(args) -> int:
    from llmrecbench.errors import ConfigError, InputError
    from llmrecbench.pipelines.text import rescore_generations_file
    from llmrecbench.tasks import get_task

    try:
        metrics = rescore_generations_file(get_task(args.task), args.generations, args.test, args.encoder, args.encoder_cache)
    except (InputError, ConfigError) as exc:
        print(str(exc), file=sys.stderr)
        return 1
    print(json.dumps(metrics, indent=2, sort_keys=True))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="llmrecbench", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    prov = sub.add_parser("provenance", help="print the chain of rules and files that made FILE")
    prov.add_argument("file", help="a file under results/, relative to the workflow directory")
    prov.add_argument("-d", "--directory", default=".", help="the workflow's working directory")
    resc = sub.add_parser(
        "rescore",
        help="recompute a text cell's metrics from its generations.parquet and the task's test part",
    )
    resc.add_argument("generations", help="a cell's generations.parquet")
    resc.add_argument("--task", required=True, help="explanation or review")
    resc.add_argument("--test", required=True, help="the task's test part, results/{dataset}/{task}/data/test.parquet")
    resc.add_argument("--encoder", default=None, help="sentence encoder of the cosine column (default: none, column left out)")
    resc.add_argument("--encoder-cache", default="resources/models/encoders", help="folder hub encoders resolve into")
    readme = sub.add_parser("readme", help="re-render the README's generated tables from results/ (resources/readme_tables.yaml)")
    readme.add_argument("readme", nargs="?", default="README.md", help="the README to update in place")
    readme.add_argument("--spec", default="resources/readme_tables.yaml", help="the blocks' specs")
    readme.add_argument("-d", "--directory", default=".", help="the workflow's working directory (holds results/)")
    readme.add_argument("--only", action="append", default=None, metavar="BLOCK",
                        help="re-render only this block (repeatable); the others are left as they are")
    args = parser.parse_args(argv)
    if args.command == "rescore":
        return _rescore(args)
    if args.command == "readme":
        from llmrecbench.errors import BenchError
        from llmrecbench.tables.readme import update_readme

        try:
            names = update_readme(args.readme, args.spec, args.directory, only=args.only)
        except BenchError as exc:
            print(str(exc), file=sys.stderr)
            return 1
        print(f"{args.readme}: re-rendered {', '.join(names) or 'no blocks'}")
        return 0
    workdir = Path(args.directory)
    if not (workdir / args.file).exists():
        print(f"{args.file}: no such file in {workdir.resolve()}", file=sys.stderr)
        return 1
    print("\n".join(provenance_chain(args.file, workdir)))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
