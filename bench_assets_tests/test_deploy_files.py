"""The team deployment's files say what they must: there is no Docker or Kubernetes in CI, so they are
parsed, not built (docs/team-deployment.md says so), and checked against each other and against the code.

Dockerfile, .dockerignore, docker-compose.yaml, deploy/ (workspace, GPU override, env example, Helm
values) and the instance config the image's entrypoint renders.
"""

from __future__ import annotations

import fnmatch
import re
import shlex
from pathlib import Path

import pytest
import yaml

from bench_assets.core.instance_settings import POSTGRES_ENV
from bench_assets.core.redaction import is_secret_name
from bench_assets.defs.instance_config import render_instance_config

REPO = Path(__file__).resolve().parents[1]
APP_SERVICES = ("code-server", "webserver", "daemon")
INTERPOLATION = re.compile(r"\$\{(?P<name>[A-Z_][A-Z0-9_]*)(?P<op>:?[-?])?(?P<rest>[^}]*)\}")


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", (REPO / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def instructions(name: str) -> list[str]:
    return [args for instruction, args in dockerfile() if instruction == name]


def docker_env() -> dict[str, str]:
    return dict(pair.split("=", 1) for args in instructions("ENV") for pair in shlex.split(args))


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yaml").read_text())


def dockerignored(path: str) -> bool:
    """Whether `docker build .` leaves ``path`` out (.dockerignore rules, last match wins, parents included)."""
    rules = [r.strip() for r in (REPO / ".dockerignore").read_text().splitlines() if r.strip() and r[0] != "#"]
    ignored = False
    parts = Path(path).parts
    for prefix in (Path(*parts[:i]).as_posix() for i in range(1, len(parts) + 1)):
        for rule in rules:
            negated, pattern = rule.startswith("!"), rule.lstrip("!").removeprefix("**/")
            if fnmatch.fnmatch(prefix, pattern) or fnmatch.fnmatch(Path(prefix).name, pattern) and "/" not in pattern:
                ignored = not negated
    return ignored


def test_dockerfile_cpu_base_by_default_cuda_by_argument_and_every_copy_is_sent():
    args = dict(a.split("=", 1) for a in instructions("ARG") if "=" in a)
    assert args["BASE_IMAGE"] == "python:3.11-slim"
    assert instructions("FROM") == ["${BASE_IMAGE}"]
    assert "python3.11" in " ".join(instructions("RUN")), "a CUDA base has no Python 3.11 of its own"
    assert "nvidia/cuda:" in (REPO / "Dockerfile").read_text(), "the CUDA build is documented"
    for copy in instructions("COPY"):
        *sources, _ = shlex.split(copy)
        for source in sources:
            assert (REPO / source).exists(), f"COPY {source}: not in the repository"
            assert not dockerignored(source), f"COPY {source}: .dockerignore leaves it out of the build"
    install = next(run for run in instructions("RUN") if "pip install" in run and ".[" in run)
    extra = re.search(r'"\.\[(\w+)\]"', install).group(1)
    pyproject = (REPO / "pyproject.toml").read_text()
    postgres_pin = re.search(r'"dagster-postgres==([\d.]+)"', pyproject).group(1)  # pip matched it to dagster
    assert f'{extra} = ["dagster-k8s=={postgres_pin}"]' in pyproject, "the image's extra matches dagster's release"
    entrypoint = yaml.safe_load(instructions("ENTRYPOINT")[0])[0]
    assert entrypoint == "/opt/bench/deploy/entrypoint.sh"
    assert (REPO / "deploy" / "entrypoint.sh").stat().st_mode & 0o111, "the entrypoint is executable"
    assert docker_env()["DAGSTER_HOME"] == "/opt/dagster/dagster_home"


def test_dockerignore_keeps_generated_data_environments_and_secrets_out():
    for path in (".venv/bin/python", ".env", "data/models/sdxl.safetensors", "data/images/m/c/p.png",
                 "data/warehouse/scores_clip/m/c.parquet", "data/bench.duckdb", "data/dagster_home/dagster.yaml",
                 "data/.cache/bench.log", "bench_assets/__pycache__/cli.cpython-311.pyc"):
        assert dockerignored(path), path
    for path in ("data/prompts/default.jsonl", "bench_assets/cli.py", "pyproject.toml", "README.md",
                 "deploy/entrypoint.sh", "dagster.yaml"):
        assert not dockerignored(path), path


def test_compose_services_share_the_image_and_read_secrets_only_from_the_environment(compose):
    services = compose["services"]
    assert set(services) == {"postgres", *APP_SERVICES}
    assert services["postgres"]["image"].startswith("postgres:")
    images = {(services[s]["image"], yaml.safe_dump(services[s]["build"])) for s in APP_SERVICES}
    assert len(images) == 1, "webserver, daemon and code server (and so its runs) run one image"
    assert next(iter(images))[0] == "${BENCH_IMAGE:-bench-assets:latest}"
    for name, service in services.items():
        for variable, value in service["environment"].items():
            if is_secret_name(variable):
                match = INTERPOLATION.fullmatch(value or "")
                assert value is None or match and match["op"] in (None, ":?", "?"), (
                    f"{name}: {variable} must come from the environment (no literal, no default): {value!r}")
    password = services["postgres"]["environment"]["POSTGRES_PASSWORD"]
    assert INTERPOLATION.fullmatch(password)["name"] == "DAGSTER_PG_PASSWORD", "the server's and clients' password"
    for name in APP_SERVICES:
        env = services[name]["environment"]
        assert env["BENCH_INSTANCE"] == "postgres" and env["DAGSTER_HOME"] == docker_env()["DAGSTER_HOME"]
        assert env["DAGSTER_PG_HOST"] == "postgres" and env["DAGSTER_PG_PORT"] == "5432"
        assert services[name]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])


def test_the_instance_the_containers_render_reads_variables_compose_sets(compose):
    rendered = yaml.safe_load(render_instance_config((REPO / "dagster.yaml").read_text(), 1, kind="postgres"))
    variables = {ref["env"] for ref in rendered["storage"]["postgres"]["postgres_db"].values() if isinstance(ref, dict)}
    assert variables == set(POSTGRES_ENV.values())
    for name in APP_SERVICES:
        assert variables <= set(compose["services"][name]["environment"]), name
    entrypoint = (REPO / "deploy" / "entrypoint.sh").read_text()
    assert 'bench instance-config --template /opt/bench/dagster.yaml' in entrypoint and "exec \"$@\"" in entrypoint


def test_compose_ports_workspace_and_volumes_line_up(compose):
    services = compose["services"]
    code_server = services["code-server"]["command"]
    port = code_server[code_server.index("-p") + 1]
    location = code_server[code_server.index("--location-name") + 1]
    assert code_server[:3] == ["dagster", "code-server", "start"] and code_server[code_server.index("-m") + 1] == \
        "bench_assets.definitions"
    assert yaml.safe_load(instructions("CMD")[0]) == code_server, "the image's default command is the code server"
    workspace = yaml.safe_load((REPO / "deploy" / "workspace.yaml").read_text())["load_from"][0]["grpc_server"]
    assert (workspace["host"], str(workspace["port"]), workspace["location_name"]) == ("code-server", port, location)
    for name in ("webserver", "daemon"):
        command = services[name]["command"]
        assert command[command.index("-w") + 1] == "/opt/bench/deploy/workspace.yaml"  # COPY deploy ./deploy
    webserver = services["webserver"]["command"]
    assert services["webserver"]["ports"][0].endswith(f":{webserver[webserver.index('-p') + 1]}")

    data_dir = services["code-server"]["environment"]["BENCH_DATA_DIR"]
    assert data_dir == docker_env()["BENCH_DATA_DIR"]
    assert f"./data:{data_dir}" in services["code-server"]["volumes"], "models, images, warehouse on the host"
    assert "postgres-data:/var/lib/postgresql/data" in services["postgres"]["volumes"]
    logs = f"dagster-storage:{docker_env()['DAGSTER_HOME']}/storage"
    assert all(logs in services[name]["volumes"] for name in APP_SERVICES), "step logs the webserver can show"
    named = {v.split(":")[0] for s in services.values() for v in s.get("volumes", []) if not v.startswith(".")}
    assert named <= set(compose["volumes"])


def test_gpu_override_env_example_and_helm_values():
    gpu = yaml.safe_load((REPO / "deploy" / "docker-compose.gpu.yaml").read_text())
    devices = gpu["services"]["code-server"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]

    example = [line for line in (REPO / "deploy" / "env.example").read_text().splitlines() if "=" in line]
    for name, value in (line.lstrip("# ").split("=", 1) for line in example):
        assert not (is_secret_name(name) and value.strip()), f"deploy/env.example holds a value for {name}"
    assert ".env" in (REPO / ".gitignore").read_text().split()

    helm = yaml.safe_load((REPO / "deploy" / "helm-values.yaml").read_text())
    deployment = helm["dagster-user-deployments"]["deployments"][0]
    assert deployment["dagsterApiGrpcArgs"] == ["-m", "bench_assets.definitions"]
    assert deployment["includeConfigInLaunchedRuns"]["enabled"] is True, "run pods use the code server's image"
    assert helm["runLauncher"]["type"] == "K8sRunLauncher" and helm["postgresql"]["enabled"] is False
    assert not re.search(r"(?i)password:\s*\S", (REPO / "deploy" / "helm-values.yaml").read_text()), "no password"
    template = yaml.safe_load((REPO / "dagster.yaml").read_text())
    queue = helm["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]
    assert queue["tagConcurrencyLimits"] == template["concurrency"]["runs"]["tag_concurrency_limits"]
    retries = helm["dagsterDaemon"]["runRetries"]
    assert (retries["maxRetries"], retries["retryOnAssetOrOpFailure"]) == (
        template["run_retries"]["max_retries"], template["run_retries"]["retry_on_asset_or_op_failure"])


def test_the_deployment_page_documents_the_deployment_and_says_it_was_not_built_in_ci():
    section = (REPO / "docs" / "team-deployment.md").read_text()  # linked from README.md's contents
    for promise in ("BENCH_INSTANCE=postgres", "DAGSTER_PG_PASSWORD", "docker compose", "deploy/helm-values.yaml",
                    "bench doctor", "Object storage"):
        assert promise in section, promise
    assert re.search(r"not (been )?built (or started )?in CI", section), "say the images were not built in CI"
