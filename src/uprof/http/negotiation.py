"""Headers every API request carries: anthropic-version and anthropic-beta."""

from __future__ import annotations

from typing import Protocol

from uprof.domain.errors import InvalidRequest
from uprof.domain.versions import BETA_VERSIONS, GA, ContractVersion

API_VERSIONS = frozenset({"2023-01-01", "2023-06-01", "2026-10-21"})

# Every beta name the official SDKs know. A known beta unrelated to user profiles is accepted and
# ignored (the docs' own examples attach message-batches-2024-09-24 to profile calls).
KNOWN_BETAS = frozenset(
    [
        "message-batches-2024-09-24",
        "prompt-caching-2024-07-31",
        "computer-use-2024-10-22",
        "computer-use-2025-01-24",
        "computer-use-2025-11-24",
        "pdfs-2024-09-25",
        "token-counting-2024-11-01",
        "token-efficient-tools-2025-02-19",
        "output-128k-2025-02-19",
        "files-api-2025-04-14",
        "mcp-client-2025-04-04",
        "mcp-client-2025-11-20",
        "mcp-client-2026-09-15",
        "dev-full-thinking-2025-05-14",
        "interleaved-thinking-2025-05-14",
        "code-execution-2025-05-22",
        "extended-cache-ttl-2025-04-11",
        "context-1m-2025-08-07",
        "context-management-2025-06-27",
        "model-context-window-exceeded-2025-08-26",
        "skills-2025-10-02",
        "fast-mode-2026-02-01",
        "output-300k-2026-03-24",
        "user-profiles-2026-03-24",
        "user-profiles-2026-08-18",
        "user-profiles-2026-09-04",
        "user-profiles-billing-2026-10-01",
        "advisor-tool-2026-03-01",
        "managed-agents-2026-04-01",
        "dreaming-2026-04-21",
        "thinking-token-count-2026-05-13",
        "server-side-fallback-2026-06-01",
        "server-side-fallback-2026-07-01",
        "fallback-credit-2026-06-01",
        "fallback-credit-2026-07-01",
        "agent-memory-2026-07-22",
        "mid-conversation-tool-changes-2026-07-01",
        "compact-2026-01-12",
        "compact-2026-09-04",
        "mcp-tunnels-2026-06-22",
        "structured-outputs-2025-11-13",
        "task-budgets-2026-03-13",
        "thinking-display-updates-2026-08-18",
        "mid-conversation-output-config-2026-07-01",
        "thinking-binding-controls-2026-08-01",
        "mid-conversation-system-clear-at-2026-08-21",
        "inline-tools-2026-09-15",
        "ce-plugins-2026-09-01",
        "spend-limit-reads-2026-09-26",
        "telemetry-destinations-2026-08-11",
        "webhooks-2026-10-07",
        "admin-user-sign-out-2026-10-08",
        "message-threads-2026-08-12",
        "analytics-usage-cost-2026-08-24",
        "experimental-claude-tag-2026-10-21",
        "cache-diagnosis-2026-04-07",
        "ce-user-management-2026-07-13",
    ]
)


class HeaderLists(Protocol):
    """Starlette's ``Headers``, or anything else that lists a header's values by name."""

    def getlist(self, key: str) -> list[str]: ...


def check_api_version(headers: HeaderLists) -> None:
    values = headers.getlist("anthropic-version")
    if not values:
        raise InvalidRequest("anthropic-version: header is required")
    if len(values) > 1 or values[0].strip() not in API_VERSIONS:
        shown = ", ".join(values)
        raise InvalidRequest(f'anthropic-version: "{shown}" is not a valid version')


def contract_version(headers: HeaderLists) -> ContractVersion:
    """Every anthropic-beta header, comma lists included; the first user-profiles value wins.

    The SDKs append their default after the caller's choice (``betas=[X]`` sends
    ``X,user-profiles-2026-08-18``), so first-listed is what the caller meant.
    """
    names = [
        name.strip()
        for header in headers.getlist("anthropic-beta")
        for name in header.split(",")
        if name.strip()
    ]
    unknown = [n for n in names if n not in KNOWN_BETAS]
    if unknown:
        shown = ", ".join(f"`{n}`" for n in unknown)
        raise InvalidRequest(
            f"Unexpected value(s) {shown} for the `anthropic-beta` header. Please consult our "
            "documentation at docs.claude.com or try again without the header."
        )
    for name in names:
        version = BETA_VERSIONS.get(name)
        if version is not None:
            return version
    return GA
