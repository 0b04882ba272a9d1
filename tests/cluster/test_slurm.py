"""The real DAG through a real one-node SLURM cluster started on loopback for this test.

``tests/cluster/local_slurm.sh`` installs munge/slurmctld/slurmd (apt) where missing and starts
them with a config under a temporary directory; the workflow then runs with
``--workflow-profile profiles/slurm`` on a small slice (two models, one seed, one epoch), and
the test checks that every job really was a SLURM job: Snakemake names a SLURM job id for each,
the cluster's job completion log lists each of them as COMPLETED, and the table exists. A
second test runs tests/cluster/gpu_probe.smk with the same profile and checks that the GPU rules
(by name) got a GPU from SLURM and other rules did not.
Teardown stops the daemons and checks that none of those this test started is left alive.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "tests/cluster/local_slurm.sh"
VENV_BIN = Path(sys.executable).parent
SNAKEMAKE = str(VENV_BIN / "snakemake")
TARGET = "results/tables/seqrec.csv"
MODELS = ["pop", "sasrec"]
# the whole Snakemake run; about 2 minutes on 2 cores (see README "Running on a SLURM cluster")
RUN_TIMEOUT_S = 900

pytestmark = pytest.mark.slurm


def _skip_reason() -> str | None:
    if sys.platform != "linux":
        return "the local SLURM cluster needs Linux"
    if os.geteuid() != 0:
        return "starting slurmctld/slurmd (and installing them with apt) needs root"
    if importlib.util.find_spec("snakemake_executor_plugin_slurm") is None:
        return "snakemake-executor-plugin-slurm is not installed in this environment"
    missing = [p for p in ("slurmctld", "slurmd", "sbatch", "munged") if shutil.which(p) is None and not Path(f"/usr/sbin/{p}").exists()]
    if missing and shutil.which("apt-get") is None:
        return f"SLURM is not installed ({', '.join(missing)} missing) and apt-get is not available"
    return None


DAEMONS = ("munged", "slurmctld", "slurmd", "slurmstepd")


def _daemon_pids() -> set[tuple[int, str]]:
    """(pid, name) of every running munged / slurmctld (+ its slurmscriptd) / slurmd / slurmstepd."""
    found = set()
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            name = comm.read_text().strip()
        except OSError:
            continue
        if name in DAEMONS:
            found.add((int(comm.parent.name), name))
    return found


@pytest.fixture(scope="module")
def mirror(request) -> Path:
    """The shared mirror: the ``mirror_dir`` fixture where conftest provides it."""
    try:
        path = Path(request.getfixturevalue("mirror_dir"))
    except pytest.FixtureLookupError:
        path = Path(os.environ.get("LLMRECBENCH_MIRROR") or REPO.parent / "shared" / "mirror")
    if not (path / "amazon-2014-5core/beauty/user_sequence.txt").exists():
        pytest.skip(f"mirror with Amazon 2014 Beauty not found at {path}")
    if importlib.util.find_spec("llmrecbench.data.download") is None:
        pytest.skip("data layer (llmrecbench.data.download) not present yet")
    return path


@pytest.fixture(scope="module")
def slurm_cluster(tmp_path_factory):
    """A one-node SLURM cluster for the module; stopped and purged afterwards, even on failure."""
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    cluster_dir = tmp_path_factory.mktemp("slurm")
    before = _daemon_pids()
    try:
        # (a start that times out or fails still reaches the stop below)
        start = subprocess.run(["bash", str(SCRIPT), "start", str(cluster_dir)], capture_output=True, text=True, timeout=600)
        if start.returncode in (3, 4):  # not installable / another SLURM instance runs here
            pytest.skip(f"local SLURM cluster unavailable: {(start.stderr.strip().splitlines() or ['?'])[-1]}")
        assert start.returncode == 0, f"local_slurm.sh start failed:\n{start.stdout}\n{start.stderr}"
        started = _daemon_pids() - before
        assert {"slurmctld", "slurmd"} <= {name for _, name in started}, started
        yield {"dir": cluster_dir, "jobcomp": cluster_dir / "log/jobcomp.log", "started": started}
    finally:
        stop = subprocess.run(["bash", str(SCRIPT), "stop", str(cluster_dir), "--purge"], capture_output=True, text=True, timeout=120)
        # every munged/slurmctld/slurmd/slurmstepd that was not running before the fixture is gone
        deadline = time.monotonic() + 10
        while (left := _daemon_pids() - before) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert stop.returncode == 0 and not left, f"daemons left alive: {left}\n{stop.stdout}\n{stop.stderr}"
        assert not cluster_dir.exists()
        for conf in ("slurm.conf", "gres.conf"):
            link = Path("/etc/slurm") / conf
            assert not (link.is_symlink() and str(cluster_dir) in os.readlink(link)), link


def _jobcomp_records(path: Path) -> dict[str, dict[str, str]]:
    """JobCompLoc (jobcomp/filetxt) lines as {job id: {field: value}}."""
    records = {}
    for line in path.read_text().splitlines():
        fields = dict(re.findall(r"(\w+)=(\S*)", line))
        if "JobId" in fields:
            records[fields["JobId"]] = fields
    return records


def test_slice_dag_runs_as_slurm_jobs(mirror, slurm_cluster, tmp_path, record_property):
    work = tmp_path / "work"
    work.mkdir()
    # Jobs run `python -m snakemake` via sbatch --export=ALL and the jobstep plugin's srun, and
    # rule scripts find `python` on PATH: the venv's bin goes first. SLURM_* from an outer
    # allocation would confuse the plugin.
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    cmd = [
        SNAKEMAKE,
        "-s", str(REPO / "Snakefile"),
        "-d", str(work),
        "--configfile", str(REPO / "config.yaml"), str(REPO / "tests/integration/config.yaml"), str(REPO / "tests/cluster/config.yaml"),
        "--config", f"mirror={mirror}",
        "--workflow-profile", str(REPO / "profiles/slurm"),
        # test speed only: poll every 2 s at first instead of 10 s, no retry of a failed job
        "--slurm-init-seconds-before-status-checks", "2",
        "--retries", "0",
        TARGET,
    ]
    t0 = time.monotonic()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=work, timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:  # snakemake got SIGKILL; the fixture scancels and stops
        pytest.fail(f"snakemake through SLURM did not finish in {RUN_TIMEOUT_S}s:\n{(exc.stderr or b'')[-4000:]!r}")
    elapsed = time.monotonic() - t0
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"snakemake failed ({proc.returncode}) after {elapsed:.0f}s:\n{out[-8000:]}"

    # 1. Snakemake submitted every job to SLURM and names its SLURM job id
    submitted = dict(re.findall(r"Job (\d+) has been submitted with SLURM jobid (\d+)", out))
    done = re.search(r"(\d+) of (\d+) steps \(100%\) done", out)
    assert done and done.group(1) == done.group(2), out[-3000:]
    n_jobs = int(done.group(2))
    assert n_jobs == 9 and len(submitted) == n_jobs, (n_jobs, submitted)
    run_id = re.search(r"SLURM run ID: (\S+)", out).group(1)

    # 2. the cluster's job completion log lists each of them as COMPLETED, under this run's name
    records = _jobcomp_records(slurm_cluster["jobcomp"])
    for slurm_id in submitted.values():
        assert slurm_id in records, f"SLURM job {slurm_id} missing from {slurm_cluster['jobcomp']}"
        rec = records[slurm_id]
        assert rec["JobState"] == "COMPLETED" and rec["ExitCode"] == "0:0", rec
        assert rec["Name"] == run_id and rec["Partition"] == "debug", rec

    # 3. profile resources reached sbatch: training asked for 2 CPUs (its threads) and 8000 MB
    rule_of = dict(re.findall(r"SLURM jobid (\d+) \(log: \S*/rule_(\w+)/", out))
    assert sorted(rule_of.values()).count("train_model") == len(MODELS), rule_of
    for slurm_id, rule in rule_of.items():
        if rule == "train_model":
            assert records[slurm_id]["ProcCnt"] == "2", records[slurm_id]
            assert "mem=8000M" in records[slurm_id]["Tres"], records[slurm_id]
        # the SLURM log of every job is kept (slurm-keep-successful-logs) and shows the jobstep
        logs = list((work / ".snakemake/slurm_logs" / f"rule_{rule}").rglob(f"{slurm_id}.log"))
        assert logs, (rule, slurm_id)

    # 4. the table exists with one row per model
    table = (work / TARGET).read_text().splitlines()
    header = table[0].split(",")
    models = sorted(line.split(",")[header.index("model")] for line in table[1:])
    assert models == sorted(MODELS), table
    print(f"SLURM slice run: {n_jobs} jobs in {elapsed:.0f}s")
    ids = sorted(submitted.values(), key=int)
    record_property("evidence", f"{n_jobs} Snakemake jobs ran as SLURM jobs {', '.join(ids)}, all COMPLETED 0:0 in the completion log ({elapsed:.0f} s)")


def test_gpu_rules_are_placed_on_a_gpu(slurm_cluster, tmp_path, record_property):
    """profiles/slurm's set-resources give the GPU rules (by name) one GPU each, and others none.

    tests/cluster/gpu_probe.smk has rules named like the workflow's GPU rules (the real ones need
    an LLM pipeline); each job records CUDA_VISIBLE_DEVICES and ``scontrol show job``. The local
    cluster's node has one count-only GPU GRES, so a job that asked for a GPU sees device 0.
    """
    work = tmp_path / "probe"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    cmd = [
        SNAKEMAKE,
        "-s", str(REPO / "tests/cluster/gpu_probe.smk"),
        "-d", str(work),
        "--workflow-profile", str(REPO / "profiles/slurm"),
        "--slurm-init-seconds-before-status-checks", "2",
        "--retries", "0",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=work, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    submitted = re.findall(r"submitted with SLURM jobid (\d+) \(log: \S*/rule_(\w+)/", out)
    assert sorted(rule for _, rule in submitted) == ["cpu_rule", "embed_items", "evaluate_llm", "finetune_llm"], out[-3000:]

    profile = yaml.safe_load((REPO / "profiles/slurm/config.yaml").read_text())["set-resources"]
    records = _jobcomp_records(slurm_cluster["jobcomp"])
    for slurm_id, rule in submitted:
        text = (work / "probe" / f"{rule}.txt").read_text()
        assert records[slurm_id]["JobState"] == "COMPLETED", records[slurm_id]
        if rule == "cpu_rule":
            assert "CUDA_VISIBLE_DEVICES=\n" in text and "gres:gpu" not in text, text
            continue
        assert profile[rule].get("gpu") == 1 or "gpu" in str(profile[rule].get("gres", "")), profile[rule]
        assert "CUDA_VISIBLE_DEVICES=0\n" in text, text
        assert re.search(r"TresPer(Job|Node)=gres:gpu:1\b", text), text
        assert f"mem={profile[rule]['mem_mb']}M" in records[slurm_id]["Tres"], records[slurm_id]
    gpu_rules = sorted(rule for _, rule in submitted if rule != "cpu_rule")
    record_property("evidence", f"GPU rules {', '.join(gpu_rules)} each got a GPU as SLURM jobs; cpu_rule got none")
