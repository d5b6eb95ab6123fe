"""Porpoise settings, from environment variables (``PORPOISE_*``, ``DATABASE_URL``) or a .env file.

The defaults are the embedded stack: everything under one data directory, SQLite, a local Temporal
dev server. Each process (API, worker, CLI) reads the same settings, injected where they are used.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PORPOISE_", env_file=".env", extra="ignore")

    data_dir: Path = Path(".porpoise")
    database_url: str = Field("", validation_alias=AliasChoices("DATABASE_URL", "PORPOISE_DATABASE_URL"))
    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    # An external Temporal (docs/deploy.md): TLS when temporal_tls is on or any TLS file is given;
    # mTLS adds the client cert + key; temporal_api_key (e.g. Temporal Cloud) implies TLS too.
    temporal_tls: bool = False
    temporal_tls_ca_file: Path | None = None  # server CA; none = the system roots
    temporal_tls_cert_file: Path | None = None  # client certificate (mTLS)
    temporal_tls_key_file: Path | None = None  # its private key
    temporal_tls_server_name: str = ""  # SNI / name to verify when it differs from the address host
    temporal_api_key: SecretStr = SecretStr("")
    # Register the namespace and search attributes at worker start (operator API; core/registration.py).
    temporal_register: bool = True
    # A file the worker touches every few seconds while its event loop runs: a liveness probe's signal.
    worker_health_file: Path | None = None
    temporal_ui_url: str = "http://127.0.0.1:8233"
    temporal_ui_port: int = 8233
    task_queue: str = "porpoise"
    # Temporal outages (docs/reliability.md): how long workers and the CLI keep retrying a Temporal call
    # (and the first connection) before giving up; long enough to ride out a server restart. The API
    # retries only briefly and answers 503 with Retry-After meanwhile.
    temporal_retry_seconds: float = Field(default=600.0, gt=0)
    api_temporal_retry_seconds: float = Field(default=5.0, gt=0)
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    api_url: str = ""  # how the CLI reaches the API; default http://api_host:api_port
    # Long polls (GET /runs/{id}?wait=...) each hold a connection and a Temporal history poll for up to
    # a minute; past this many at once, the API answers at once instead (services/runs.py: get_run).
    api_long_poll_limit: int = Field(default=200, ge=0)
    # Cross-site safety (api/security.py): Host names the API answers to besides api_host, 127.0.0.1,
    # localhost and [::1] ("name" = any port, "name:port"); origins allowed by CORS (none = CORS off).
    allowed_hosts: list[str] = Field(default_factory=list)
    cors_origins: list[str] = Field(default_factory=list)
    # DS login sessions (POST /dolphinscheduler/login, storage/login.py) end this long after login
    # (DS: 7200 s); login failures per user name and client before a pause (api/ds_rest/routers/login.py).
    ds_session_seconds: float = Field(7200, gt=0)
    ds_login_failures: int = Field(5, ge=1)
    log_dir: Path | None = None  # task logs; default <data_dir>/logs
    max_definition_bytes: int = 5 * 1024 * 1024
    # Hostile input (api/limits.py): every other request body is capped at max_body_bytes (413), any
    # JSON body nesting deeper than max_json_depth is refused (422). SUB_PROCESS calls nest at most
    # max_sub_process_depth levels (model/sub_process.py: refused at submit, a node fails at run time).
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    max_json_depth: int = Field(default=64, ge=8, le=256)
    max_sub_process_depth: int = Field(default=10, ge=1)
    # What one Temporal payload may hold (the server's limit.blobSize.error, 2 MiB by default): a
    # definition whose run cannot fit its definition or node status in one is refused at submit.
    temporal_payload_limit_bytes: int = Field(default=2 * 1024 * 1024, ge=64 * 1024)
    default_timezone: str = "UTC"
    minute_seconds: float = 60.0  # length of a DS minute; only tests change it
    # Worker tuning (temporal-notes "Measured baseline"): more slots are not more throughput.
    max_cached_workflows: int = 5000
    max_concurrent_workflow_tasks: int = 100
    max_concurrent_activities: int = 100
    # Wall time a workflow activation may take before the SDK calls it a deadlock (its own is 2 s; a
    # starved CPU stretches activations far beyond that, api/starvation.py).
    workflow_deadlock_seconds: float = 30.0
    # How long stop/pause wait for the worker to take them; past it a stop terminates the run
    # (reason recorded), a pause answers 503 (core/operations_deadline.py).
    operation_answer_seconds: float = 30.0
    # Lifecycle events (docs/events/README.md): always recorded in the outbox table; published to
    # Pulsar when pulsar_url is set. Topic mode: single | per_kind | per_project.
    events_enabled: bool = True
    events_emit_bound_seconds: float = 30.0  # the longest the DAG waits on recording one event
    # Alerts (docs/alerts.md): the business-placeholder resolver ("module:factory"; "" = the example
    # resolver that reads the run's startParams).
    alert_resolver: str = ""
    pulsar_url: str = ""
    events_topic: str = "persistent://public/default/porpoise-events"
    events_topic_mode: str = "single"
    events_retention_days: int = 7
    # Datasource password encryption (docs/datasources.md): comma-separated Fernet keys, the first
    # encrypts and all decrypt; or a file holding them. Without either, only the embedded dev mode
    # starts: it generates <data_dir>/secret.key. dev_mode None = on when the database is SQLite.
    secret_key: SecretStr = SecretStr("")
    secret_key_file: Path | None = None
    dev_mode: bool | None = None
    # Temporal payload encryption (core/codec.py, docs/security.md): the AES key ring; default
    # <data_dir>/payload.keys, generated in dev mode only.
    payload_key_file: Path | None = None
    # Task logs (activities/logs.py, activities/masking.py, activities/log_budget.py). Per task attempt:
    # output past log_max_bytes_per_task keeps its head and its last log_tail_bytes (0 = no cap).
    # Per worker: the sweeper deletes logs older than log_retention_days and, while the log root holds
    # more than log_disk_budget_bytes, the oldest finished instances' logs (0 = off).
    log_max_bytes_per_task: int = Field(default=64 * 1024 * 1024, ge=0)
    log_tail_bytes: int = Field(default=1024 * 1024, ge=0)
    log_disk_budget_bytes: int = Field(default=10 * 1024**3, ge=0)
    log_retention_days: float = Field(default=30.0, ge=0)
    log_sweep_interval_seconds: float = Field(default=600.0, gt=0)
    # Extra masking regexes per task type (key "*": every type), on top of the built-in rules; from the
    # environment as JSON: PORPOISE_LOG_MASK_RULES='{"SHELL": ["(?<=api-key: )\\S+"]}'.
    log_mask_rules: dict[str, list[str]] = Field(default_factory=dict)
    # Which resolved parameter names count as secret, their values masked in every log; "" = built in.
    log_secret_param_pattern: str = ""
    # DataX tasks (docs/datax.md). Local runs: `<datax_python> <datax_launcher> --jvm=... job.json`.
    datax_python: str = "python3"
    datax_launcher: str = "/opt/datax/bin/datax.py"
    # Routing: "auto" runs a task on Kubernetes when its xmx (GB) >= datax_k8s_min_xmx_gb, or when the
    # task says runOn=k8s; "local"/"k8s" force this worker's default (one worker group = one setting).
    # With no cluster configured (datax_k8s_namespace empty) everything runs locally.
    datax_run_on: str = "auto"
    datax_k8s_min_xmx_gb: int = Field(default=4, ge=1)
    # Worker groups (core/worker_groups.py): heavy DataX jobs (runOn=k8s, or xmx >= datax_k8s_min_xmx_gb)
    # of tasks in the default group run in this worker group instead ("" = where their group says).
    datax_worker_group: str = ""
    datax_k8s_namespace: str = ""
    datax_k8s_host: str = ""  # API server URL (no kubeconfig); else datax_k8s_kubeconfig, else in-cluster
    datax_k8s_kubeconfig: Path | None = None
    datax_k8s_image: str = "porpoise/datax:3.0-jdk8"
    datax_k8s_launcher: str = "/opt/datax/bin/datax.py"  # datax.py inside the image
    datax_k8s_service_account: str = "porpoise-datax"
    datax_k8s_node_selector: dict[str, str] = Field(default_factory=dict)
    datax_k8s_ttl_seconds: int = Field(default=300, ge=0)  # ttlSecondsAfterFinished
    datax_k8s_active_deadline_seconds: int = Field(default=0, ge=0)  # when the task has no timeout; 0 = none
    datax_k8s_cpu_request: str = "1"
    datax_k8s_watch_seconds: float = Field(default=300.0, gt=0)  # one watch call; resumed after
    datax_k8s_poll_seconds: float = Field(default=2.0, gt=0)  # pod phase checks while Pending
    datax_k8s_unschedulable_seconds: float = Field(default=300.0, ge=0)  # Unschedulable this long fails

    @field_validator("log_mask_rules")
    @classmethod
    def _rules_compile(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for task_type, regexes in value.items():
            for regex in regexes:
                try:
                    re.compile(regex)
                except re.error as e:
                    raise ValueError(f"log_mask_rules[{task_type!r}]: {regex!r} is not a valid regex: {e}") from None
        return value

    @field_validator("log_secret_param_pattern")
    @classmethod
    def _pattern_compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as e:
            raise ValueError(f"log_secret_param_pattern {value!r} is not a valid regex: {e}") from None
        return value

    @model_validator(mode="after")
    def _mtls_pair(self) -> Settings:
        if bool(self.temporal_tls_cert_file) != bool(self.temporal_tls_key_file):
            raise ValueError("temporal_tls_cert_file and temporal_tls_key_file go together (mTLS needs both)")
        for name in ("temporal_tls_ca_file", "temporal_tls_cert_file", "temporal_tls_key_file"):
            path = getattr(self, name)
            if path is not None and not path.is_file():
                raise ValueError(f"{name}: {path} is not a readable file")
        return self

    @model_validator(mode="after")
    def _ui_url_follows_port(self) -> Settings:
        """The embedded dev server serves its UI on temporal_ui_port: unless the UI URL is set, links
        (``porpoise up``, run and alert links) follow that port."""
        if "temporal_ui_url" not in self.model_fields_set:
            self.temporal_ui_url = f"http://127.0.0.1:{self.temporal_ui_port}"
        return self

    @property
    def temporal_uses_tls(self) -> bool:
        return bool(self.temporal_tls or self.temporal_tls_ca_file or self.temporal_tls_cert_file
                    or self.temporal_api_key.get_secret_value())

    @field_validator("datax_worker_group")
    @classmethod
    def _datax_group(cls, value: str) -> str:
        from .worker_groups import check_name

        return check_name(value.strip()) if value.strip() else ""

    @field_validator("datax_run_on")
    @classmethod
    def _run_on(cls, value: str) -> str:
        if value not in ("auto", "local", "k8s"):
            raise ValueError(f"datax_run_on must be auto, local or k8s, got {value!r}")
        return value

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'porpoise.db').resolve()}"

    @property
    def resolved_log_dir(self) -> Path:
        return (self.log_dir or self.data_dir / "logs").resolve()

    @property
    def resolved_api_url(self) -> str:
        return self.api_url or f"http://{self.api_host}:{self.api_port}"


@lru_cache
def get_settings() -> Settings:
    return Settings()  # type: ignore[call-arg]  # fields come from the environment
