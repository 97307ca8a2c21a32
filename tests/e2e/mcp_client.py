"""Drives `booflow mcp` with the official MCP Python SDK (tests/mcp.rs runs it).

Usage: mcp_client.py stdio BOOFLOW_BINARY PROJECT_DIR
       mcp_client.py http URL TOKEN

stdio spawns `booflow mcp` in PROJECT_DIR with this process's environment; http connects
to `/mcp` of a running `booflow serve` with `Authorization: Bearer TOKEN`. Either performs the
scenario of docs/DESIGN.md §6's MCP tools and prints ONE JSON object of findings on stdout;
the Rust test asserts on each. Nothing is asserted here, so a broken step shows up as a
finding (or an "error" key), not as a lost traceback.
"""

import asyncio
import json
import os
import sys
import time
import traceback

import httpx2

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client


def text_of(result):
    """The text parts of a tool result, joined."""
    return "\n".join(getattr(c, "text", "") for c in result.content)


def summary(result):
    """What the Rust test needs of a tool result."""
    return {
        "is_error": bool(result.is_error),
        "text": text_of(result),
        "structured": result.structured_content,
    }


async def poll_run(session, run_id, until, timeout_s=60):
    """get_run until its status is in `until`; the last answer."""
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        last = await session.call_tool("get_run", {"run_id": run_id})
        status = (last.structured_content or {}).get("status")
        if status in until:
            break
        await asyncio.sleep(0.2)
    return summary(last) if last is not None else None


async def scenario(session, findings):
    tools = await session.list_tools()
    findings["tools"] = sorted(t.name for t in tools.tools)
    findings["tool_schemas"] = {t.name: t.input_schema for t in tools.tools}

    listed = await session.call_tool("list_workflows", {})
    findings["list_workflows"] = summary(listed)

    progress = []

    async def on_progress(value, total, message):
        progress.append({"progress": value, "total": total, "message": message})

    waited = await session.call_tool(
        "run_workflow",
        {"name": "three-calls", "args": {"topic": "waited"}},
        progress_callback=on_progress,
    )
    findings["run_wait"] = summary(waited)
    findings["progress"] = progress

    started = await session.call_tool(
        "run_workflow",
        {"name": "three-calls", "args": {"topic": "background"}, "wait": False},
    )
    findings["run_nowait"] = summary(started)
    run_id = (started.structured_content or {}).get("run_id")
    if run_id:
        findings["get_run_nowait"] = await poll_run(
            session, run_id, {"completed", "failed", "cancelled"}
        )

    slow = await session.call_tool(
        "run_workflow", {"name": "slow", "wait": False}
    )
    findings["slow_start"] = summary(slow)
    slow_id = (slow.structured_content or {}).get("run_id")
    if slow_id:
        # Cancel while its one call waits on the model's 5 s delay.
        await asyncio.sleep(0.5)
        cancelled = await session.call_tool("cancel_run", {"run_id": slow_id})
        findings["cancel_run"] = summary(cancelled)
        findings["get_run_cancelled"] = await poll_run(
            session, slow_id, {"completed", "failed", "cancelled"}
        )
        again = await session.call_tool("cancel_run", {"run_id": slow_id})
        findings["cancel_again"] = summary(again)

    bad = await session.call_tool("workflow_three_calls", {"topic": 5})
    findings["bad_args"] = summary(bad)

    good = await session.call_tool("workflow_three_calls", {"topic": "tool"})
    findings["workflow_tool"] = summary(good)

    unknown = await session.call_tool("run_workflow", {"name": "no-such-workflow"})
    findings["unknown_workflow"] = summary(unknown)

    path = await session.call_tool("run_workflow", {"name": "../escape.js"})
    findings["path_refused"] = summary(path)

    failing = await session.call_tool("run_workflow", {"name": "fails"})
    findings["failed_run"] = summary(failing)


def describe(error):
    """The leaf errors of an exception (group), as `Type: message`."""
    if isinstance(error, BaseExceptionGroup):
        return [line for e in error.exceptions for line in describe(e)]
    return [f"{type(error).__name__}: {error}"]


def connect(argv):
    """The transport named on the command line."""
    if argv[1] == "stdio":
        binary, project = argv[2], argv[3]
        params = StdioServerParameters(
            command=binary, args=["mcp"], cwd=project, env=dict(os.environ)
        )
        return stdio_client(params)
    url, token = argv[2], argv[3]
    client = httpx2.AsyncClient(
        headers={"Authorization": f"Bearer {token}"},
        timeout=httpx2.Timeout(30, read=300),
    )
    return streamable_http_client(url, http_client=client)


async def main():
    findings = {}
    try:
        async with connect(sys.argv) as streams:
            read, write = streams[0], streams[1]
            async with ClientSession(read, write) as session:
                init = await session.initialize()
                findings["server_name"] = init.server_info.name
                await scenario(session, findings)
    except Exception as e:  # reported as a finding; the Rust test fails on it
        findings["error"] = "; ".join(describe(e))
        findings["traceback"] = traceback.format_exc()
    print(json.dumps(findings))


asyncio.run(main())
