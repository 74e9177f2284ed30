"""The Dockerfile and docker-compose.yml replayed on this machine, without Docker (no daemon runs here, and
Docker Hub cannot be reached). What we ship for deployment is then a tested configuration, not a sketch.

Replayed as written: the Dockerfile's ARG, ENV, WORKDIR, RUN, COPY (with .dockerignore) and USER in order,
RUN as root through /bin/sh; the compose file interpolated as compose does (`${VAR:-default}`, `$VAR`, `$$`),
its profiles, and every selected service's environment (anchors and merge keys), secret, named volume,
command, `depends_on` conditions and health check (interval, timeout, retries, start_period,
start_interval: a service that fails `retries` checks in a row after its start period is unhealthy, and
`up` fails as compose's does), each service as the image's user with its command as PID 1 of a PID
namespace of its own, and `stop` as compose's: SIGTERM to PID 1, SIGKILL after 10 s. Each process runs in
a mount namespace of its own (`unshare -m`) in which the image's tree is bound at /app, its /etc, /home and
/root (what `useradd` wrote) at /etc, /home and /root, a tmpfs at /tmp, a secret at /run/secrets, the named
volume at its mount point, and each service's writable container layer (/app/var, the home folder) of its own.

Stand-ins, because this machine is not Docker:
- the base image python:3.11-slim is a Python 3.11 virtual environment made from this machine's python3.11,
  first on PATH (so the RUN steps' `pip` and `python` and the services' `gunicorn` and `celery` are its);
  /usr, /opt and the rest of the file system are this machine's;
- /etc starts as a copy of this machine's; the build's `TORCH_INDEX` names PyPI and PIP_FIND_LINKS names
  this machine's folder of wheels, so the CPU torch wheel on its disk stands in for download.pytorch.org's
  (unreachable); everything else comes from PyPI, as in a docker build;
- the services postgres and redis are this machine's PostgreSQL and Redis: the names resolve to 127.0.0.1
  (the image's /etc/hosts), the database and its owner are made as the postgres image makes them (and
  dropped afterwards), and the broker uses Redis database `redis_db` rather than 0, which other processes
  here may use;
- the network is the machine's, so the published port 8000 becomes a free port in commands and health checks;
- the `cpu` profile's worker stands for the scoring worker (no GPU here; the `gpu` profile's image differs
  only in its torch).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
# The base image's PATH (python:3.11-slim), after the stand-in environment's bin.
BASE_PATH = "/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin"
# Mount points this machine needs for the binds; made (empty) if missing and left in place.
MOUNT_POINTS = ("/app",)
# Where a build finds torch when download.pytorch.org cannot be reached (this machine's CPU wheel).
WHEELS = Path("/opt/wheels")
STOP_GRACE_SECONDS = 10  # compose's default stop_grace_period


class ReplayError(RuntimeError):
    pass


@dataclass(frozen=True)
class Instruction:
    keyword: str
    value: str


def dockerfile_instructions(text: str) -> list[Instruction]:
    """Logical lines as Docker reads them: comments dropped, backslash continuations joined."""
    instructions, current = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#") or (not line and not current):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        keyword, _, value = current.partition(" ")
        instructions.append(Instruction(keyword.upper(), value.strip()))
        current = ""
    if current:
        raise ReplayError(f"Dockerfile ends inside a continued line: {current!r}")
    return instructions


def dockerignore_matcher(text: str):
    """A predicate on paths relative to the build context, as .dockerignore's patterns select them (a pattern
    also excludes everything below what it matches). Exceptions (`!`) are not used by ours and refused."""
    patterns = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("!"):
            raise ReplayError(f".dockerignore exception {line!r}: the replay does not implement them")
        regex = re.escape(line.strip("/")).replace(r"\*\*/", "(?:.*/)?").replace(r"\*\*", ".*")
        regex = regex.replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
        patterns.append(re.compile(f"{regex}(?:/.*)?"))
    return lambda relative: any(p.fullmatch(relative) for p in patterns)


VARIABLE = re.compile(r"\$\$|\$\{(?P<braced>\w+)(?::-(?P<default>[^}]*))?\}|\$(?P<plain>[A-Za-z_]\w*)|\$")


def interpolate(value, variables: dict[str, str]):
    """Compose's interpolation of every string in the file: `${NAME}`, `${NAME:-default}`, `$NAME`, and `$$`
    for a dollar sign; a lone `$` is an error there and here."""
    if isinstance(value, dict):
        return {key: interpolate(item, variables) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, variables) for item in value]
    if not isinstance(value, str):
        return value

    def one(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group("braced") or match.group("plain")
        if name is None:
            raise ReplayError(f"invalid interpolation in {value!r}: a lone $ (write $$)")
        return variables.get(name) or match.group("default") or ""

    return VARIABLE.sub(one, value)


@dataclass
class Image:
    """The built image: its tree on this machine and what the Dockerfile left for the services."""

    root: Path  # stands for the image's /: root/app is /app, root/etc /etc, root/home /home
    base: Path  # the stand-in base image's Python environment
    env: dict[str, str] = field(default_factory=dict)
    workdir: str = "/"
    user: str = "root"
    cmd: list[str] = field(default_factory=list)
    steps: list[tuple[str, float]] = field(default_factory=list)  # (RUN command, seconds)

    def host_path(self, path: str) -> Path:
        """Where a path of the image's /app, /etc or /home lies on this machine."""
        return self.root / path.lstrip("/")

    def ids(self, user: str) -> tuple[int, int]:
        for line in self.host_path("/etc/passwd").read_text(encoding="utf-8").splitlines():
            fields = line.split(":")
            if fields[0] == user or fields[2] == user:
                return int(fields[2]), int(fields[3])
        raise ReplayError(f"the image has no user {user!r}")


@dataclass
class Container:
    """One service's (or one build's) view of the image: the binds and the user its processes get."""

    image: Image
    user: str
    env: dict[str, str]
    workdir: str
    layer: Path | None = None  # its own /app/var and /home, when it is a service's container
    volumes: list[tuple[Path, str]] = field(default_factory=list)  # (on this machine, mount point)
    secrets: Path | None = None  # a folder bound at /run/secrets

    def argv(self, command: list[str], *, pid_namespace: bool = False) -> list[str]:
        image = self.image
        binds = [(image.host_path(p), p) for p in ("/etc", "/app", "/root")]
        binds.append((self.layer / "home" if self.layer else image.host_path("/home"), "/home"))
        if self.layer:
            binds.append((self.layer / "var", "/app/var"))
        binds += self.volumes
        script = ["set -e"]
        script += [f"mount --bind {shlex.quote(str(src))} {shlex.quote(dst)}" for src, dst in binds]
        script.append("mount -t tmpfs tmpfs /tmp")
        if self.secrets:
            script += [
                "mount -t tmpfs tmpfs /run",
                "mkdir /run/secrets",
                f"mount --bind {self.secrets} /run/secrets",
            ]
        script.append(f"cd {shlex.quote(self.workdir)}")
        if self.user in ("root", "0"):
            script.append('exec "$@"')
        else:
            uid, gid = image.ids(self.user)
            script.append(f'exec setpriv --reuid={uid} --regid={gid} --init-groups "$@"')
        # A service's command is PID 1 of its own PID namespace, as in a container: the kernel then drops the
        # signals it has no handler for, SIGTERM included (a shell left as PID 1 ignores `docker stop`).
        pid = ["-p", "--fork", "--kill-child"] if pid_namespace else []
        return [
            "unshare",
            "-m",
            *pid,
            "--propagation",
            "private",
            "--",
            "/bin/sh",
            "-c",
            "\n".join(script),
            "sh",
            *command,
        ]

    def environment(self) -> dict[str, str]:
        home = "/root" if self.user in ("root", "0") else f"/home/{self.user}"
        return {"PATH": f"{self.image.base}/bin:{BASE_PATH}", "HOME": home, "LANG": "C.UTF-8", **self.env}

    def run(
        self, command: list[str], *, timeout: float = 600, check: bool = True
    ) -> subprocess.CompletedProcess:
        result = subprocess.run(
            self.argv(command),
            env=self.environment(),
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise ReplayError(
                f"{command!r} exited {result.returncode}:\n{result.stdout[-4000:]}{result.stderr[-4000:]}"
            )
        return result

    def start(self, command: list[str], log: Path) -> subprocess.Popen:
        with open(log, "ab") as out:
            return subprocess.Popen(
                self.argv(command, pid_namespace=True),
                env=self.environment(),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )


def image_build(work: Path, *, build_args: dict[str, str] | None = None, context: Path = REPO) -> Image:
    """The Dockerfile's instructions in order. Raises ReplayError on the first step that fails."""
    for point in MOUNT_POINTS:
        Path(point).mkdir(exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    work.chmod(0o755)  # the image's user must reach its tree
    root, base = work / "rootfs", work / "base"
    instructions = dockerfile_instructions((context / "Dockerfile").read_text(encoding="utf-8"))
    if instructions[0].keyword != "FROM" or not instructions[0].value.startswith("python:3.11"):
        raise ReplayError(f"the replay stands in for python:3.11 images only, not {instructions[0].value!r}")
    python = base_python()
    if python is None:
        raise ReplayError("no Python 3.11 that every user may run (the image's user runs it)")
    subprocess.run([python, "-m", "venv", str(base)], check=True)
    for folder in ("app", "home", "root"):
        (root / folder).mkdir(parents=True)
    shutil.copytree("/etc", root / "etc", symlinks=True)
    with open(root / "etc" / "hosts", "a", encoding="utf-8") as hosts:
        hosts.write("\n127.0.0.1 postgres redis\n")
    image = Image(root=root, base=base)
    overrides, args = dict(build_args or {}), {}
    ignored = dockerignore_matcher((context / ".dockerignore").read_text(encoding="utf-8"))
    for step in instructions[1:]:
        if step.keyword == "ARG":
            name, _, default = step.value.partition("=")
            args[name] = overrides.pop(name, shlex.split(default)[0] if default else "")
        elif step.keyword == "ENV":
            for pair in shlex.split(step.value):
                name, _, value = pair.partition("=")
                image.env[name] = value
        elif step.keyword == "WORKDIR":
            image.workdir = step.value
            image.host_path(step.value).mkdir(parents=True, exist_ok=True)
        elif step.keyword == "RUN":
            stand_in = {"PIP_FIND_LINKS": str(WHEELS)} if WHEELS.is_dir() else {}
            container = Container(image, image.user, {**args, **image.env, **stand_in}, image.workdir)
            started = time.monotonic()
            container.run(["/bin/sh", "-c", step.value], timeout=1800)
            image.steps.append((step.value, time.monotonic() - started))
        elif step.keyword == "COPY":
            if step.value != ". .":
                raise ReplayError(f"COPY {step.value}: the replay copies the whole context only ('. .')")
            _copy_context(context, image.host_path(image.workdir), ignored)
        elif step.keyword == "USER":
            image.user = step.value
        elif step.keyword == "CMD":
            image.cmd = json.loads(step.value)
        elif step.keyword not in ("EXPOSE", "LABEL"):
            raise ReplayError(f"the replay does not implement {step.keyword}")
    if overrides:
        raise ReplayError(f"build arguments the Dockerfile does not declare: {sorted(overrides)}")
    return image


def base_python() -> str | None:
    """A python3.11 the image's user can run too: its real file and every folder above it open to others (a
    pyenv build under /root is not)."""
    for candidate in ("/usr/local/bin/python3.11", "/usr/bin/python3.11", shutil.which("python3.11")):
        if not candidate or not os.path.exists(candidate):
            continue
        real = Path(os.path.realpath(candidate))
        if all(folder.stat().st_mode & 0o001 for folder in real.parents) and real.stat().st_mode & 0o001:
            return candidate
    return None


def base_python_version() -> tuple[int, int, int]:
    out = subprocess.run(
        [base_python(), "-c", "import sys; print(*sys.version_info[:3])"],
        capture_output=True,
        text=True,
        encoding="utf-8",
        check=True,
    ).stdout
    return tuple(int(part) for part in out.split())


def _copy_context(context: Path, target: Path, ignored) -> None:
    """COPY . . as root: everything in the build context that .dockerignore keeps, modes kept."""
    for path in sorted(context.rglob("*")):
        relative = path.relative_to(context).as_posix()
        if ignored(relative) or any(ignored(parent.as_posix()) for parent in Path(relative).parents):
            continue
        destination = target / relative
        if path.is_symlink():
            destination.symlink_to(os.readlink(path))
        elif path.is_dir():
            destination.mkdir(exist_ok=True)
        else:
            shutil.copy2(path, destination)


@dataclass(frozen=True)
class HealthCheck:
    """A compose health check with Docker's defaults (30 s interval and timeout, 3 retries, no start period;
    start_interval 5 s)."""

    test: list[str]
    interval: float = 30
    timeout: float = 30
    retries: int = 3
    start_period: float = 0
    start_interval: float = 5

    @classmethod
    def from_compose(cls, spec: dict, port: int) -> HealthCheck:
        test = spec["test"]
        test = ["/bin/sh", "-c", test[1]] if test[0] == "CMD-SHELL" else test[1:]
        times = {
            k: _seconds(spec[k])
            for k in ("interval", "timeout", "start_period", "start_interval")
            if k in spec
        }
        return cls(
            [part.replace(":8000", f":{port}") for part in test], retries=spec.get("retries", 3), **times
        )


def _seconds(duration: str) -> float:
    """Compose's durations: 600s, 1m30s, 1h."""
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", str(duration))
    if not parts or "".join(n + u for n, u in parts) != str(duration):
        raise ReplayError(f"not a compose duration: {duration!r}")
    return sum(float(n) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[u] for n, u in parts)


@dataclass
class Service:
    name: str
    container: Container
    command: list[str]
    healthcheck: HealthCheck | None
    depends_on: dict[str, str] = field(default_factory=dict)  # service: condition
    process: subprocess.Popen | None = None
    log: Path | None = None
    started_at: float = 0.0
    healthy_after: float | None = None  # seconds from start to its first passing check
    failures: int = 0  # checks failed in a row after the start period
    next_check: float = 0.0

    def health(self) -> subprocess.CompletedProcess:
        check = self.healthcheck
        try:
            return self.container.run(check.test, timeout=check.timeout, check=False)
        except subprocess.TimeoutExpired:
            return subprocess.CompletedProcess(check.test, 1, "", f"timed out after {check.timeout} s")

    def probe(self) -> None:
        """One health check when it is due, counted as Docker counts them. Raises ReplayError once unhealthy."""
        now = time.monotonic()
        if self.healthy_after is not None or now < self.next_check:
            return
        check = self.healthcheck
        in_start_period = now - self.started_at < check.start_period
        result = self.health()
        if result.returncode == 0:
            self.healthy_after = time.monotonic() - self.started_at
            return
        if not in_start_period:
            self.failures += 1
            if self.failures >= check.retries:
                raise ReplayError(
                    f"{self.name} is unhealthy ({check.retries} failed checks after its start period; compose "
                    f"stops `up` here):\n{result.stdout[-2000:]}{result.stderr[-2000:]}\n{self.log_tail()}"
                )
        self.next_check = time.monotonic() + (check.start_interval if in_start_period else check.interval)

    def log_tail(self, characters: int = 6000) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")[-characters:] if self.log else ""


@dataclass
class Deployment:
    """docker compose up, replayed: the services that run the image, each as a process group."""

    image: Image
    work: Path
    port: int
    services: dict[str, Service]

    def exec(self, service: str, command: list[str], *, timeout: float = 600, check: bool = True):
        """`docker compose exec SERVICE COMMAND`: in that service's container, as the image's user."""
        return self.services[service].container.run(command, timeout=timeout, check=check)

    def up(self, *, timeout: float) -> None:
        """`docker compose up`: each service once those it depends on are started, or healthy where its
        condition says so (postgres and redis are this machine's, up already). Raises ReplayError when a
        service exits or turns unhealthy meanwhile, or the conditions are not met in `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while pending := [s for s in self.services.values() if s.process is None]:
            for service in self.services.values():
                if service.process and service.healthcheck:
                    service.probe()
            for service in pending:
                if all(self._met(name, condition) for name, condition in service.depends_on.items()):
                    service.log = self.work / f"{service.name}.log"
                    service.started_at = time.monotonic()
                    service.next_check = service.started_at + (
                        service.healthcheck.start_interval if service.healthcheck else 0
                    )
                    service.process = service.container.start(service.command, service.log)
            for service in self.services.values():
                if service.process and service.process.poll() is not None:
                    raise ReplayError(
                        f"{service.name} exited {service.process.returncode}:\n{service.log_tail()}"
                    )
            if time.monotonic() > deadline:
                waiting = {s.name: s.depends_on for s in pending}
                logs = "".join(f"--- {s.name}\n{s.log_tail(3000)}" for s in self.services.values() if s.log)
                raise ReplayError(f"not started in {timeout:.0f} s, waiting on {waiting}:\n{logs}")
            time.sleep(1)

    def _met(self, name: str, condition: str) -> bool:
        service = self.services.get(name)
        if service is None:
            return True  # postgres, redis
        if service.process is None:
            return False
        return condition != "service_healthy" or service.healthy_after is not None

    def stop(self) -> dict[str, float | None]:
        """`docker compose stop`: SIGTERM to each container's PID 1, SIGKILL to what is left after 10 s. Returns
        each service's seconds to exit, None where it had to be killed."""
        stopped: dict[str, float | None] = {}
        running = [s for s in self.services.values() if s.process and s.process.poll() is None]
        started = time.monotonic()
        for service in running:
            with contextlib.suppress(ProcessLookupError):
                os.kill(_pid_one(service.process.pid), signal.SIGTERM)
        for service in running:
            try:
                service.process.wait(timeout=max(0.0, started + STOP_GRACE_SECONDS - time.monotonic()))
                stopped[service.name] = time.monotonic() - started
            except subprocess.TimeoutExpired:
                os.killpg(service.process.pid, signal.SIGKILL)
                service.process.wait()
                stopped[service.name] = None
        return stopped


def _pid_one(unshare_pid: int) -> int:
    """The PID 1 of the namespace `unshare --fork` made: its only child."""
    for _ in range(50):
        children = (
            Path(f"/proc/{unshare_pid}/task/{unshare_pid}/children").read_text(encoding="utf-8").split()
        )
        if children:
            return int(children[0])
        time.sleep(0.1)
    raise ProcessLookupError(unshare_pid)


def compose_deployment(
    image: Image,
    work: Path,
    *,
    redis_db: int,
    secret: str,
    profiles: tuple[str, ...] = (),
    variables: dict[str, str] | None = None,
) -> Deployment:
    """The compose file's services that run our image (those without a profile and those of `profiles`),
    ready to start; its postgres and redis are this machine's (see the module's docstring), the database made
    afresh as the postgres image makes it."""
    compose = interpolate(
        yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8")), variables or {}
    )
    port = _free_port()
    secrets_dir = work / "secrets"
    secrets_dir.mkdir()
    for name, spec in compose.get("secrets", {}).items():
        # Docker bind-mounts the file with its own owner and mode: root's, 644, as the README's `echo >` makes it.
        (secrets_dir / name).write_text(secret + "\n", encoding="utf-8")
        (secrets_dir / name).chmod(0o644)
    ours = {
        n: spec
        for n, spec in compose["services"].items()
        if spec.get("image", "").startswith("phrasebench:")
        and (not spec.get("profiles") or set(spec["profiles"]) & set(profiles))
    }
    mounted = {entry.partition(":")[0] for spec in ours.values() for entry in spec.get("volumes", [])}
    volumes = {
        name: _named_volume(image, work, name, ours) for name in compose.get("volumes", {}) if name in mounted
    }
    _postgres_database_make(compose["services"]["postgres"]["environment"])
    services = {}
    for name, spec in ours.items():  # postgres and redis are this machine's
        env = {k: str(v) for k, v in spec.get("environment", {}).items()}
        env["CELERY_BROKER_URL"] = re.sub(r"/\d+$", f"/{redis_db}", env["CELERY_BROKER_URL"])
        layer = work / "containers" / name
        _container_layer(image, layer)
        mounts = []
        for entry in spec.get("volumes", []):
            source, _, target = entry.partition(":")
            mounts.append((volumes[source], target))
        container = Container(
            image,
            image.user,
            {**image.env, **env},
            image.workdir,
            layer=layer,
            volumes=mounts,
            secrets=secrets_dir if spec.get("secrets") else None,
        )
        command = spec.get("command", image.cmd)
        command = shlex.split(command) if isinstance(command, str) else list(command)
        command = [part.replace("0.0.0.0:8000", f"127.0.0.1:{port}") for part in command]
        check = HealthCheck.from_compose(spec["healthcheck"], port) if spec.get("healthcheck") else None
        depends_on = spec.get("depends_on", {})
        if isinstance(depends_on, list):
            depends_on = dict.fromkeys(depends_on, {"condition": "service_started"})
        conditions = {
            other: (how or {}).get("condition", "service_started") for other, how in depends_on.items()
        }
        services[name] = Service(name, container, command, check, conditions)
    return Deployment(image, work, port, services)


def _named_volume(image: Image, work: Path, name: str, services: dict) -> Path:
    """A new named volume as Docker makes it at its first mount: a copy of what the image holds at the mount
    point (contents, owners and modes), or an empty folder owned by root when the image holds nothing there."""
    volume = work / "volumes" / name
    targets = {
        entry.partition(":")[2]
        for spec in services.values()
        for entry in spec.get("volumes", [])
        if entry.partition(":")[0] == name
    }
    in_image = [image.host_path(t) for t in targets if t.startswith("/app/") and image.host_path(t).exists()]
    if in_image:
        _copy_owned(in_image[0], volume)
    else:
        volume.mkdir(parents=True)
    for target in targets:  # the mount point, which Docker makes in the container if the image lacks it
        image.host_path(target).mkdir(parents=True, exist_ok=True)
    return volume


def _container_layer(image: Image, layer: Path) -> None:
    """A service's writable layer: its own copies of /app/var and /home, as the image holds them."""
    layer.mkdir(parents=True)
    _copy_owned(image.host_path("/app/var"), layer / "var")
    _copy_owned(image.host_path("/home"), layer / "home")


def _copy_owned(source: Path, target: Path) -> None:
    """A copy with owners, modes and links kept (`cp -a`; shutil's copies would belong to root)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["cp", "-a", str(source), str(target)], check=True)


def postgres_database_drop(environment: dict[str, str] | None = None) -> None:
    """What _postgres_database_make made, dropped: the database and its owner."""
    from psycopg import sql

    if environment is None:
        compose = yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))
        environment = compose["services"]["postgres"]["environment"]
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as connection:
        name = sql.Identifier(environment["POSTGRES_DB"])
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
        connection.execute(
            sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(environment["POSTGRES_USER"]))
        )


def _postgres_database_make(environment: dict[str, str]) -> None:
    """As the postgres image's entry point: POSTGRES_USER a superuser with POSTGRES_PASSWORD, owning a new
    POSTGRES_DB. Dropped first: every replay starts from an empty database, as `docker compose up` does."""
    user, password, database = (environment[k] for k in ("POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"))
    import psycopg
    from psycopg import sql

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as connection:
        connection.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database))
        )
        exists = connection.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [user]).fetchone()
        verb = "ALTER" if exists else "CREATE"
        connection.execute(
            sql.SQL(verb + " ROLE {} WITH SUPERUSER LOGIN PASSWORD {}").format(
                sql.Identifier(user), sql.Literal(password)
            )
        )
        connection.execute(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(database), sql.Identifier(user))
        )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
