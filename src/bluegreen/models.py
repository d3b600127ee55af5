"""Result models shared by the engine, the service, the CLI's --json and the MCP tools.

One model per answer, so a person's `--json` and an assistant's structured content are the same.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, SerializerFunctionWrapHandler, model_serializer

Role = Literal["LIVE", "STANDBY"]


class Health(BaseModel):
    url: str
    healthy: bool
    status_code: int | None = None
    latency_ms: float | None = None
    color: str | None = Field(
        default=None, description="Colour the app reports in its health body."
    )
    commit: str | None = Field(
        default=None, description="Commit the app reports in its health body."
    )
    error: str | None = None
    unknown: bool = Field(
        default=False,
        description="The probe could not be made (our SSH path to the HAProxy host); "
        "healthy is then false without saying anything about the server.",
    )


class PreviewRoute(BaseModel):
    """A fixed haproxy.cfg rule that sends requests to one colour whatever is LIVE."""

    hosts: list[str] = Field(
        description="The Host header values it routes; empty when its condition is not an "
        "exact Host list."
    )
    line: str = Field(description="Where the rule is: FILE:LINE.")
    text: str = Field(description="The rule as written (text from the HAProxy host).")


class ServerStatus(BaseModel):
    color: str
    role: Role | None = Field(
        default=None, description="From haproxy.cfg; None when routing is unclear."
    )
    ssh: str
    address: str = Field(description="host:port as HAProxy reaches the server.")
    backend: str | None = None
    server: str | None = None
    reachable: bool | None = Field(default=None, description="Whether SSH to the host worked.")
    healthy: bool | None = None
    health: Health | None = None
    commit: str | None = Field(
        default=None, description="Commit checked out in the app dir on the host."
    )
    deployed_at: str | None = Field(
        default=None, description="When that commit was deployed (ISO 8601)."
    )
    runtime_state: str | None = Field(
        default=None, description="HAProxy's running view, e.g. UP, MAINT."
    )
    prompt_installed: bool | None = Field(
        default=None,
        description="The host's shell prompt shows its colour and role (`bluegreen prompt`).",
    )
    error: str | None = None
    preview: list[PreviewRoute] = Field(
        default_factory=list, description="haproxy.cfg's preview rules to this colour."
    )
    preview_command: str | None = Field(
        default=None,
        description="How to reach this colour now, whatever is LIVE: through the frontend with "
        "its first preview Host, else (no preview rule) straight at its address.",
    )
    preview_note: str | None = Field(
        default=None, description="Which way preview_command goes, in words."
    )
    pool: list[ServerStatus] = Field(
        default_factory=list,
        description="A pool colour: each of its servers (the fields above then sum them up: "
        "commit only when every server runs it, healthy when enough servers are).",
    )
    pool_healthy: int | None = Field(
        default=None, description="A pool colour: how many of its servers are healthy."
    )


class Routing(BaseModel):
    certain: bool
    style: str | None = None
    frontend: str
    summary: str
    problems: list[str] = []
    notes: list[str] = Field(
        default_factory=list, description="Remarks of the analysis that do not make it uncertain."
    )
    frontend_url: str | None = Field(
        default=None,
        description="Where people reach the frontend: the app's frontend_url, else its bind "
        "on the HAProxy host.",
    )


class DriftItem(BaseModel):
    field: str
    state_file: str | None
    haproxy: str | None
    message: str


class StateFileView(BaseModel):
    path: str
    present: bool
    valid: bool
    contents: dict[str, object] | None = None
    error: str | None = None


class LockHolder(BaseModel):
    operation: str
    user: str
    host: str
    pid: int
    since: str
    stale: bool = False


class NodeStatus(BaseModel):
    """One HAProxy node's own view of an app, when [haproxy.nodes] names several."""

    name: str
    ssh: str
    primary: bool = Field(description="The node that keeps the locks, history and approvals.")
    reachable: bool
    live: str | None = Field(
        default=None, description="The colour this node's haproxy.cfg routes users to."
    )
    certain: bool = Field(description="This node's LIVE is known: read, certain, reloaded.")
    not_reloaded: bool = False
    state_file_live: str | None = Field(default=None, description="LIVE as its state file says.")
    cfg_file: str | None = Field(
        default=None, description="The file holding the app's deciding line on this node."
    )
    problems: list[str] = []

    def summary(self) -> str:
        """One line for people and models: the node, its LIVE and what makes it uncertain."""
        role = " (primary)" if self.primary else ""
        live = f"routes to {self.live.upper()}" if self.live else "LIVE unknown"
        if not self.reachable:
            live = "cannot be read"
        elif self.not_reloaded:
            live += ", cfg edited and not reloaded"
        state = f"; state file says {self.state_file_live.upper()}" if self.state_file_live else ""
        return f"HAProxy node {self.name}{role} {self.ssh}: {live}{state}"


class AppStatus(BaseModel):
    app: str
    certain: bool = Field(description="True when LIVE/STANDBY are known without doubt.")
    live: ServerStatus | None = None
    standby: ServerStatus | None = None
    servers: list[ServerStatus] = Field(
        description="Both colours, whatever their role (a pool colour lists its servers in pool)."
    )
    routing: Routing
    runtime_disagreements: list[str] = []
    runtime_error: str | None = None
    state_file: StateFileView
    drift: list[DriftItem] = []
    nodes: list[NodeStatus] = Field(
        default_factory=list, description="Each HAProxy node, when several are configured."
    )
    lock: LockHolder | None = None
    last_switch: str | None = None
    switch_count: int | None = None
    problems: list[str] = Field(
        default_factory=list, description="Everything that needs a person's attention."
    )
    next_step: str = Field(default="", description="What to do next, in one sentence.")
    checked_at: str
    duration_ms: float


class AppSummary(BaseModel):
    app: str
    frontend: str
    servers: dict[str, str] = Field(description="colour -> address as HAProxy sees it")


StepStatus = Literal["ok", "failed", "skipped"]


class StepResult(BaseModel):
    name: str
    status: StepStatus
    duration_s: float
    message: str = ""
    host: str | None = None
    exit_status: int | None = None
    output_tail: str | None = Field(default=None, description="Last lines of output on failure.")


class PlannedCommand(BaseModel):
    step: str
    host: str
    command: str = Field(description="The exact shell line, secrets masked.")


class ServerDeployment(BaseModel):
    """One server of a pool as a deploy left it."""

    server: str = Field(description="Its HAProxy server name.")
    host: str
    address: str
    ok: bool
    commit_before: str | None = None
    commit_after: str | None = None
    backup_path: str | None = None
    failed_step: str | None = None
    error: str | None = None
    restored: bool | None = None
    state: str | None = Field(default=None, description="On failure: what it is left running.")


class DeployResult(BaseModel):
    app: str
    ok: bool
    dry_run: bool = False
    color: str = Field(description="The STANDBY colour deployed to.")
    host: str = Field(description="Its ssh target (a pool: every server's, comma-separated).")
    address: str = Field(description="Its address (a pool: every server's, comma-separated).")
    ref: str | None = None
    commit_before: str | None = None
    commit_after: str | None = None
    backup_path: str | None = None
    steps: list[StepResult] = []
    plan: list[PlannedCommand] = Field(default_factory=list, description="dryRun: what would run.")
    warnings: list[str] = []
    failed_step: str | None = None
    failed_server: str | None = Field(
        default=None, description="A pool: the server whose step failed first."
    )
    error: str | None = None
    error_type: str | None = Field(
        default=None,
        description="What stopped the deploy: an errors.py class name (CommandFailed, "
        "TransportError, CommandTimeout, UnsafeOperationError) or HealthCheckFailed, "
        "PreflightFailed.",
    )
    exit_status: int | None = Field(default=None, description="Exit status of the failing command.")
    output_tail: str | None = Field(
        default=None, description="Last lines of the failing command's output (or the app log)."
    )
    restored: bool | None = Field(
        default=None, description="On failure: whether the backup was restored and restarted."
    )
    standby_state: str | None = Field(
        default=None, description="On failure: what the STANDBY host is left running, in words."
    )
    live_color: str
    live_healthy_after: bool | None = None
    duration_s: float = 0.0
    next_step: str = ""
    servers: list[ServerDeployment] = Field(
        default_factory=list,
        description="A pool: each server (the commits above are set only when every server "
        "has the same one).",
    )


class TargetServer(BaseModel):
    """One server of a pool the switch makes LIVE, as the target check found it."""

    server: str = Field(description="Its HAProxy server name.")
    address: str
    ready: bool = Field(description="Healthy, on the commit that goes LIVE.")
    commit: str | None = Field(default=None, description="Commit checked out on it.")
    health: Health
    problem: str | None = Field(default=None, description="Why it is not ready.")


class SwitchPlan(BaseModel):
    app: str
    from_live: str
    to_live: str
    emergency: bool = False
    reconcile: bool = Field(
        default=False,
        description="Several HAProxy nodes that disagree: only the nodes that route elsewhere "
        "change, to the primary's LIVE (to_live).",
    )
    diff: str = Field(description="The exact haproxy.cfg change (each node's, under its name).")
    cfg_file: str | None = Field(
        default=None, description="The one file HAProxy loads that the switch replaces."
    )
    target_healthy: bool
    target_health: Health | None = None
    target_commit: str | None = Field(
        default=None, description="Commit checked out on the target: what goes LIVE."
    )
    live_commit: str | None = Field(
        default=None, description="Commit checked out on the current LIVE."
    )
    target_servers: list[TargetServer] = Field(
        default_factory=list, description="A pool target: each of its servers."
    )
    target_needed: int | None = Field(
        default=None,
        description="A pool target: how many servers must be ready (min_healthy, else all).",
    )
    warnings: list[str] = []
    plan_hash: str = Field(
        description="Covers haproxy.cfg, the state file and the target's commit: any change "
        "after the plan makes its approval stale."
    )
    approval: str = Field(description="How this switch is approved: elicit, token or operator.")
    confirm_token: str | None = Field(
        default=None, description="Pass back as confirmToken to execute this exact plan."
    )
    token_expires_at: str | None = None


class SwitchResult(BaseModel):
    app: str
    executed: bool
    ok: bool
    plan: SwitchPlan | None = Field(
        default=None, description="When approval is needed, plan.confirm_token is the token."
    )
    from_live: str | None = None
    to_live: str | None = None
    emergency: bool = False
    steps: list[StepResult] = []
    verified: bool = False
    rolled_back: bool = False
    auto_rollback: bool = False
    state_file_written: bool = False
    split_window_ms: float | None = Field(
        default=None,
        description="Several HAProxy nodes: how long they routed the app to different colours "
        "(the spread between the nodes' reload completions).",
    )
    error: str | None = None
    message: str = ""
    duration_s: float = 0.0
    next_step: str = ""


ApprovalKind = Literal[
    "terminal", "elicitation", "token", "operator", "allowed-unapproved", "emergency-rule"
]


class ApprovalRecord(BaseModel):
    """How a switch was approved, as far as this tool can know it."""

    kind: ApprovalKind
    by: str | None = Field(
        default=None,
        description="terminal/operator: the OS user@host who said yes; elicitation: the MCP "
        "client's name and version (its yes, not proof of a person).",
    )
    channel: str | None = Field(
        default=None,
        description="operator: where the person approved (terminal, dashboard); None before "
        "channels were recorded.",
    )

    def describe(self) -> str:
        who = ", ".join(x for x in (self.by, self.channel and f"via {self.channel}") if x)
        return f"{self.kind} ({who})" if who else self.kind

    @model_serializer(mode="wrap")
    def _without_unknown_channel(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Records without a channel keep the shape they had before channels were recorded.
        data: dict[str, Any] = handler(self)
        if data.get("channel") is None:
            data.pop("channel", None)
        return data


class HistoryEntry(BaseModel):
    time: str
    operation: str
    app: str
    user: str
    host: str
    outcome: str
    color: str | None = None
    from_live: str | None = None
    to_live: str | None = None
    ref: str | None = None
    commit_before: str | None = None
    commit_after: str | None = None
    from_commit: str | None = Field(default=None, description="switch: the old LIVE's commit.")
    to_commit: str | None = Field(default=None, description="switch: the new LIVE's commit.")
    approval: ApprovalRecord | None = None
    emergency: bool = False
    reconcile: bool = False
    reason: str | None = None
    duration_s: float | None = None
    split_window_ms: float | None = Field(
        default=None, description="switch on several HAProxy nodes: see SwitchResult."
    )
    steps: list[StepResult] = []
    error: str | None = None


class History(BaseModel):
    app: str
    entries: list[HistoryEntry]
    unreadable_lines: int = 0


class CfgLineView(BaseModel):
    number: int = Field(description="1-based line number in its file.")
    text: str = Field(description="The line as it is in the file (text from the HAProxy host).")
    why: str = Field(description="Why this line matters for the app's routing.")
    file: str = Field(description="The file HAProxy loads that holds the line.")


class AppRouting(BaseModel):
    """An app's routing lines in haproxy.cfg, with the analysis that found them."""

    app: str
    config_path: str
    config_files: list[str] = Field(
        default=[], description="Every file (or directory) HAProxy loads, in its order."
    )
    routing: Routing
    lines: list[CfgLineView] = []


class PendingApproval(BaseModel):
    """An operator-mode switch plan waiting for a person's approval."""

    token: str
    app: str
    from_live: str
    to_live: str
    emergency: bool = False
    target_commit: str | None = None
    plan_hash: str = Field(description="The plan approved: it must still be the current one.")
    created: str
    expires: str
