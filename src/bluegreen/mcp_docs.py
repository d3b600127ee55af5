"""What the assistant reads: the server's instructions and each tool's description, kept in one
place so the tools, resources and prompts say the same thing in the same words."""

from __future__ import annotations

from bluegreen.domain.config import AppConfig

TOKEN_TTL_DEFAULT_S = int(AppConfig.model_fields["token_ttl_s"].default)

INSTRUCTIONS = """\
Blue/green releases behind HAProxy. BLUE and GREEN are server names; either can be LIVE (serving \
users, per haproxy.cfg) or STANDBY. The release cycle: get_deployment_status -> deploy_to_standby \
(touches STANDBY only) -> the user tests STANDBY with the command shown -> switch_traffic (STANDBY \
becomes LIVE after the user approves) -> get_deployment_status. The old LIVE stays untouched as \
STANDBY, so switch_traffic again is the instant rollback. Never approve a switch on the user's \
behalf: pass a confirmToken back only after the user explicitly agreed to the plan you showed."""

APP_HELP = "App name from the bluegreen config (see list_apps), e.g. 'jw-attendant'."

STATUS_DOC = """\
Which server (BLUE or GREEN) of an app is LIVE (serving users) and which is STANDBY, read from \
haproxy.cfg on the HAProxy host (the source of truth), with both servers' health, deployed commits, \
HAProxy's runtime view, state-file drift and any operation lock. Read-only: changes nothing. Call it \
first, before deploy_to_standby or switch_traffic, and afterwards to confirm. Each server's \
`preview_command` is how the user tests it now (through the frontend with its preview Host from \
haproxy.cfg, else at its address); the summary names STANDBY's, and `next_step` says what to do \
next. If `certain` is false the routing is ambiguous: do not deploy or switch until a person fixes it."""

LIST_DOC = """\
The apps this server manages (from its config file): name, HAProxy frontend and the two servers' \
addresses. Read-only and needs no SSH, so it answers even when hosts are down. Use it to find the \
`app` name the other tools take; it does not say which server is LIVE (get_deployment_status \
does)."""

HISTORY_DOC = """\
Recent deploys and traffic switches of an app, newest first: when, who, which server, commits \
before/after, LIVE before/after, outcome, reason and failed steps. Read-only. Use it to explain what \
happened, or to find which server was LIVE before the last switch when planning a rollback."""

DEPLOY_DOC = """\
Deploy a new version to the STANDBY server only. It finds STANDBY from haproxy.cfg (never from the \
server names), backs up its app dir, pulls the code (git fetch + checkout of the app's branch, or \
`ref`), builds, restarts and health-checks it. It never touches the LIVE server and never changes \
HAProxy routing: users are unaffected. On failure the backup is restored and the result names the \
failed step, its output and what to do. pullGithub=false deploys what is already checked out; \
createBackup=false skips the backup (no restore on failure); runMigrations=true runs the app's \
migrate command, which acts on the database LIVE may share, so only when the user asked for it; \
dryRun=true only returns the exact commands that would run; breakLock=true clears a STALE lock \
(never one held by a running operation). Destructive on STANDBY: it restarts the app there, prunes \
old backups and can migrate a database LIVE shares. Progress is reported per step. A colour that is \
a pool of servers is deployed to its servers in parallel, at most 8 at a time (migrations \
once); a failure on any restores them all and the result names the server. Next: ask the user \
to test STANDBY at the address in the result, then switch_traffic to release it."""

SWITCH_DOC = f"""\
Release: make STANDBY the new LIVE. It edits haproxy.cfg (validated with `haproxy -c`, replaced \
atomically, seamless reload, verified through the frontend) and updates the state file; the old \
LIVE becomes STANDBY, untouched, so calling switch_traffic again is the instant rollback. Deploys \
nothing. It needs approval. When the client supports elicitation, the client is shown the plan and \
asked: its answer is the client's yes (recorded with its name and version), not proof that a \
person answered. Otherwise the first call changes nothing and returns the plan (servers, target \
health, haproxy.cfg diff) with a confirmToken, valid for that plan only, for the app's token_ttl_s \
({TOKEN_TTL_DEFAULT_S} s by default): show the plan to the user, and only after they explicitly \
agree, call switch_traffic again with the same arguments plus confirmToken. An app with approval \
"operator" (the mode that proves a person) also needs `bluegreen approve TOKEN` run by a person at \
a terminal. Never invent, reuse or self-approve a token. emergency=true is a fast rollback (skips \
draining and slow checks); force=true (with emergency) switches even to an unhealthy target; \
requireApproval=false works only where the config allows it. `reason` goes into the history. \
Progress is reported per step. Before switching, make sure STANDBY was tested. The plan alone, \
without a token, is the resource bluegreen://apps/{{app}}/switch-plan."""
