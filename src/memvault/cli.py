"""The ``memvault`` command: sessions, artifacts, doctor, demo. Every command takes ``--url`` (default: the embedded
default)."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from memvault import Memory, Message
from memvault.config import default_url, mask_url
from memvault.errors import MemvaultError

app = typer.Typer(help="memvault: persistent agent memory.", no_args_is_help=True, add_completion=False)
sessions_app = typer.Typer(help="List, show, delete, export and import sessions.", no_args_is_help=True)
app.add_typer(sessions_app, name="sessions")
artifacts_app = typer.Typer(help="List, get, put and remove a session's artifacts.", no_args_is_help=True)
app.add_typer(artifacts_app, name="artifacts")
console = Console()
err = Console(stderr=True)

UrlOpt = Annotated[str | None, typer.Option("--url", help="Backend URL (default: $MEMVAULT_URL or embedded SQLite).")]
NsOpt = Annotated[str | None, typer.Option("--namespace", "-n", help="Namespace (tenant).")]

DEMO_SESSION = "memvault-demo"
DEMO_TURNS = [
    ("user", "Hi! I'm Alice. My favourite colour is blue."),
    ("assistant", "Nice to meet you, Alice. Blue it is."),
    ("user", "I'm flying to Paris on 14 March for a conference."),
    ("assistant", "Noted: Paris, 14 March. Want a reminder the day before?"),
    ("user", "Yes please, and remind me to pack the charger."),
    ("assistant", "Done: a reminder on 13 March, charger included."),
]


def _open(url: str | None, namespace: str | None = None) -> Memory:
    return _open_with(url, namespace)


def env_keys() -> list[str] | None:
    """``$MEMVAULT_ENCRYPTION_KEY``: the keys every command opens the store with (comma-separated: the first
    encrypts, all decrypt; each one as ``encryption=`` takes it: base64, hex, env:NAME, file:PATH)."""
    value = os.environ.get("MEMVAULT_ENCRYPTION_KEY", "").strip()
    return [k.strip() for k in value.split(",") if k.strip()] or None


def _open_with(url: str | None, namespace: str | None = None, **options: Any) -> Memory:
    if "encryption" not in options and env_keys():
        options["encryption"] = env_keys()
    try:
        return Memory(url, namespace=namespace, **options)
    except MemvaultError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None


def _fail(exc: Exception) -> None:
    err.print(f"[red]error:[/red] {exc}")
    raise typer.Exit(1)


def _ago(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit} ago"
    return f"{seconds:.0f}s ago"


@sessions_app.command("list")
def sessions_list(
    url: UrlOpt = None,
    namespace: NsOpt = None,
    user: Annotated[str | None, typer.Option("--user", help="Only this user's sessions.")] = None,
    limit: Annotated[int, typer.Option(help="Page size.")] = 50,
    cursor: Annotated[str | None, typer.Option(help="next_cursor of the previous page.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON Lines output.")] = False,
) -> None:
    """List sessions, most recently updated first."""
    with _open(url, namespace) as mem:
        try:
            page = mem.sessions(user_id=user, limit=limit, cursor=cursor)
        except MemvaultError as exc:
            _fail(exc)
        if as_json:
            for info in page:
                console.print_json(json.dumps({**info.__dict__, **_times(info)}, default=str))
            return
        table = Table(title=f"sessions in {mem.store.url} [{mem.namespace}]")
        for col in ("id", "user", "messages", "bytes", "updated"):
            table.add_column(col)
        now = time.time()
        for info in page:
            table.add_row(
                info.id, info.user_id or "", str(info.message_count), str(info.size_bytes),
                _ago(now - info.updated_at.timestamp()),
            )
        console.print(table)
        if page.next_cursor:
            console.print(f"more: --cursor {page.next_cursor}")


def _times(info: Any) -> dict[str, Any]:
    return {k: getattr(info, k).isoformat() if getattr(info, k) else None for k in ("created_at", "updated_at", "expires_at")}


@sessions_app.command("show")
def sessions_show(
    session_id: str,
    url: UrlOpt = None,
    namespace: NsOpt = None,
    last: Annotated[int, typer.Option(help="How many of the newest messages.")] = 20,
) -> None:
    """Show a session's info and its newest messages."""
    with _open(url, namespace) as mem:
        try:
            info = mem.get_session(session_id)
            messages = mem.session(session_id).messages(last=last)
        except MemvaultError as exc:
            _fail(exc)
        console.print(f"[bold]{info.id}[/bold] user={info.user_id} messages={info.message_count} "
                      f"bytes={info.size_bytes} backend={info.backend}")
        table = Table()
        for col in ("seq", "role", "content", "created"):
            table.add_column(col)
        for m in messages:
            text = m.text
            table.add_row(str(m.seq), m.role + (f" ({m.name})" if m.name else ""),
                          text if len(text) < 200 else text[:197] + "...", m.created_at.isoformat(timespec="seconds"))
        console.print(table)
        try:
            state = mem.session(session_id).state.get()
            manifest = mem.session(session_id).artifacts.manifest()
        except MemvaultError as exc:
            _fail(exc)
        if state.version:
            by = f" by {state.actor}" if state.actor else ""
            console.print(f"[bold]state[/bold] v{state.version} ({state.updated_at:%Y-%m-%d %H:%M:%S}{by})")
            console.print_json(json.dumps(state.data, ensure_ascii=False))
        else:
            console.print("[bold]state[/bold] (never set)")
        _artifact_table(list(manifest.values()), "artifacts (latest versions)")


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    value = n / 1024
    for unit in ("KiB", "MiB"):
        if value < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def _artifact_table(versions: list[Any], title: str) -> None:
    if not versions:
        console.print(f"[bold]{title}[/bold]: none")
        return
    table = Table(title=title)
    for col in ("name", "version", "size", "type", "created", "sha256"):
        table.add_column(col)
    for v in versions:
        table.add_row(v.name, str(v.version), _size(v.size), v.content_type,
                      v.created_at.isoformat(timespec="seconds"), v.sha256[:12])
    console.print(table)


def _artifact_json(v: Any) -> str:
    return json.dumps({**v.__dict__, "created_at": v.created_at.isoformat()}, ensure_ascii=False)


VersionOpt = Annotated[int | None, typer.Option("--version", "-v", help="A version number (default: the latest).")]


@artifacts_app.command("list")
def artifacts_list(
    session_id: str,
    url: UrlOpt = None,
    namespace: NsOpt = None,
    name: Annotated[str | None, typer.Option("--name", help="Every version of this artifact.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON Lines output.")] = False,
) -> None:
    """The latest version of each artifact of a session (or every version of --name)."""
    with _open(url, namespace) as mem:
        art = mem.session(session_id).artifacts
        try:
            versions = art.versions(name) if name is not None else art.list()
        except MemvaultError as exc:
            _fail(exc)
        if as_json:
            for v in versions:
                sys.stdout.write(_artifact_json(v) + "\n")
            return
        _artifact_table(versions, f"artifacts of {session_id} [{mem.namespace}]")


@artifacts_app.command("get")
def artifacts_get(
    session_id: str,
    name: str,
    url: UrlOpt = None,
    namespace: NsOpt = None,
    version: VersionOpt = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="File (default: stdout).")] = None,
) -> None:
    """Write an artifact's content to a file or stdout (streamed, chunk by chunk)."""
    with _open(url, namespace) as mem:
        try:
            with mem.session(session_id).artifacts.open(name, version) as reader:
                if output is None:
                    for block in reader:
                        sys.stdout.buffer.write(block)
                    sys.stdout.buffer.flush()
                else:
                    with output.open("wb") as fh:
                        for block in reader:
                            fh.write(block)
                    err.print(f"wrote {reader.info.size} bytes of {name} v{reader.info.version} to {output}")
        except (MemvaultError, OSError) as exc:
            _fail(exc)


@artifacts_app.command("put")
def artifacts_put(
    session_id: str,
    name: str,
    path: Annotated[Path, typer.Argument(help="The file to store ('-' for stdin).")],
    url: UrlOpt = None,
    namespace: NsOpt = None,
    content_type: Annotated[str | None, typer.Option("--content-type", help="MIME type (default: guessed).")] = None,
) -> None:
    """Store a file as the next version of an artifact."""
    with _open(url, namespace) as mem:
        art = mem.session(session_id).artifacts
        try:
            if str(path) == "-":
                saved = art.save(name, sys.stdin.buffer, content_type=content_type)
            else:
                saved = art.save(name, path, content_type=content_type)
        except (MemvaultError, OSError) as exc:
            _fail(exc)
        console.print(f"stored {saved.name} v{saved.version}: {saved.size} bytes, sha256 {saved.sha256[:12]}… "
                      f"{saved.url}")


@artifacts_app.command("rm")
def artifacts_rm(
    session_id: str,
    name: str,
    url: UrlOpt = None,
    namespace: NsOpt = None,
    version: VersionOpt = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
) -> None:
    """Delete one version of an artifact, or all of them."""
    what = f"{name} v{version}" if version is not None else f"every version of {name}"
    if not yes:
        typer.confirm(f"Delete {what} from session {session_id!r}?", abort=True)
    with _open(url, namespace) as mem:
        try:
            removed = mem.session(session_id).artifacts.delete(name, version)
        except MemvaultError as exc:
            _fail(exc)
        console.print(f"deleted {removed} version(s)" if removed else "no such artifact")
        if not removed:
            raise typer.Exit(1)


@sessions_app.command("delete")
def sessions_delete(
    session_id: str,
    url: UrlOpt = None,
    namespace: NsOpt = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
) -> None:
    """Delete a session with everything it holds."""
    if not yes:
        typer.confirm(f"Delete session {session_id!r}?", abort=True)
    with _open(url, namespace) as mem:
        try:
            existed = mem.delete_session(session_id)
        except MemvaultError as exc:
            _fail(exc)
        console.print("deleted" if existed else "no such session")
        if not existed:
            raise typer.Exit(1)


@sessions_app.command("export")
def sessions_export(
    session_id: str,
    url: UrlOpt = None,
    namespace: NsOpt = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="File (default: stdout).")] = None,
) -> None:
    """Export a session as JSON Lines."""
    with _open(url, namespace) as mem:
        try:
            lines = mem.export_session(session_id)
            if output is None:
                for line in lines:
                    sys.stdout.write(line + "\n")
            else:
                with output.open("w", encoding="utf-8") as fh:
                    for line in lines:
                        fh.write(line + "\n")
        except MemvaultError as exc:
            _fail(exc)


@sessions_app.command("import")
def sessions_import(
    path: Annotated[Path, typer.Argument(help="A JSON Lines export ('-' for stdin).")],
    url: UrlOpt = None,
    namespace: NsOpt = None,
    session_id: Annotated[str | None, typer.Option("--as", help="Import under another session id.")] = None,
) -> None:
    """Import a JSON Lines export (messages already present are skipped)."""
    with _open(url, namespace) as mem:
        try:
            if str(path) == "-":
                info = mem.import_session(sys.stdin, session_id=session_id)
            else:
                with path.open(encoding="utf-8") as fh:
                    info = mem.import_session(fh, session_id=session_id)
        except (MemvaultError, OSError) as exc:
            _fail(exc)
        console.print(f"imported {info.id}: {info.message_count} messages")


@sessions_app.command("stats")
def sessions_stats(url: UrlOpt = None) -> None:
    """Counts and sizes of the store."""
    with _open(url) as mem:
        console.print_json(json.dumps(mem.store.stats(), default=str))


@app.command()
def reindex(
    url: UrlOpt = None,
    namespace: NsOpt = None,
    embedder: Annotated[str, typer.Option(help="'default' (offline MiniLM) or 'hash'.")] = "default",
) -> None:
    """Re-embed every message of a namespace (after an embedder change), with a progress bar."""
    from rich.progress import Progress

    with _open_with(url, namespace, embedder=embedder) as mem, Progress(console=err) as bar:
        task = bar.add_task("re-embedding", total=None)
        try:
            done = mem.reindex(lambda n, total: bar.update(task, completed=n, total=total))
        except MemvaultError as exc:
            _fail(exc)
        model = mem.index_status().model_id
    console.print(f"re-embedded {done} messages with {model}")


@app.command()
def recall(
    query: str,
    url: UrlOpt = None,
    namespace: NsOpt = None,
    session: Annotated[str | None, typer.Option(help="Only this session.")] = None,
    user: Annotated[str | None, typer.Option("--user", help="Only this user's sessions.")] = None,
    k: Annotated[int, typer.Option("-k", "--k", help="How many hits.")] = 5,
    mode: Annotated[str, typer.Option(help="hybrid, dense or keyword.")] = "hybrid",
    embedder: Annotated[str, typer.Option(help="'default' (offline MiniLM) or 'hash'.")] = "default",
) -> None:
    """Hybrid recall: what did we say about QUERY?"""
    with _open_with(url, namespace, embedder=embedder) as mem:
        try:
            hits = mem.recall(query, session=session, user_id=user, k=k, mode=mode)
        except MemvaultError as exc:
            _fail(exc)
        table = Table(title=f"recall {query!r}")
        for col in ("score", "session", "seq", "role", "content"):
            table.add_column(col)
        for hit in hits:
            m = hit.message
            table.add_row(f"{hit.score:.3f}", hit.session_id, str(m.seq), m.role, m.text[:120])
        console.print(table)


@app.command()
def doctor(url: UrlOpt = None) -> None:
    """Which backend, is it reachable, schema version, counts."""
    target = url or default_url()
    table = Table(title="memvault doctor")
    table.add_column("check")
    table.add_column("result")
    table.add_row("url", mask_url(target))
    ok = True
    try:
        mem = Memory(target, encryption=env_keys())
    except MemvaultError as exc:
        table.add_row("open", f"[red]FAILED[/red] {exc}")
        console.print(table)
        raise typer.Exit(1) from None
    with mem:
        table.add_row("backend", mem.backend)
        try:
            started = time.perf_counter()
            mem.ping()
            table.add_row("reachable", f"[green]yes[/green] ({(time.perf_counter() - started) * 1000:.2f} ms)")
            for key, value in mem.store.stats().items():
                if key not in ("backend", "url"):
                    table.add_row(key, json.dumps(value, default=str) if isinstance(value, (dict, list)) else str(value))
        except MemvaultError as exc:
            ok = False
            table.add_row("reachable", f"[red]NO[/red] {exc}")
    console.print(table)
    if not ok:
        raise typer.Exit(1)


@app.command()
def demo(
    url: UrlOpt = None,
    session_id: Annotated[str, typer.Option("--session", help="Session id to use.")] = DEMO_SESSION,
) -> None:
    """Write a short conversation, read it back from a NEW process, and show what happened. Offline."""
    target = url or default_url()
    with _open(target) as mem:
        s = mem.session(session_id, user_id="alice", metadata={"source": "memvault demo"})
        s.clear()
        started = time.perf_counter()
        stored = s.extend(Message(role=r, content=c) for r, c in DEMO_TURNS)
        write_ms = (time.perf_counter() - started) * 1000
    console.print(f"[bold]1.[/bold] wrote {len(stored)} messages to [cyan]{mask_url(target)}[/cyan] "
                  f"session [cyan]{session_id}[/cyan] in {write_ms:.2f} ms, then closed the store")
    code = (
        "import json, sys\nfrom memvault import Memory\n"
        "with Memory(sys.argv[1]) as m:\n"
        "    s = m.session(sys.argv[2])\n"
        "    print(json.dumps([[x.seq, x.role, x.text] for x in s.messages()]))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, target, session_id], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        err.print(f"[red]the second process failed:[/red]\n{proc.stderr}")
        raise typer.Exit(1)
    rows = json.loads(proc.stdout)
    table = Table(title=f"2. read back by a new process (pid != {__import__('os').getpid()}) — it survived")
    for col in ("seq", "role", "content"):
        table.add_column(col)
    for seq, role, text in rows:
        table.add_row(str(seq), role, text)
    console.print(table)
    survived = [r[2] for r in rows] == [c for _, c in DEMO_TURNS]
    console.print("[green]memory survived the restart[/green]" if survived else "[red]mismatch![/red]")
    if not survived:
        raise typer.Exit(1)
    with _open(target) as mem:
        question = "when is my trip?"
        started = time.perf_counter()
        hits = mem.recall(question, session=session_id, k=2)
        recall_ms = (time.perf_counter() - started) * 1000
        table = Table(title=f"3. hybrid recall (offline MiniLM + BM25): {question!r} in {recall_ms:.0f} ms")
        for col in ("score", "seq", "content"):
            table.add_column(col)
        for hit in hits:
            table.add_row(f"{hit.score:.2f}", str(hit.message.seq), hit.message.text)
        console.print(table)
        ctx = mem.context(session_id, query=question, budget_tokens=90, model="gpt-4o")
        spent = ", ".join(f"{name} {part.tokens}" for name, part in ctx.parts.items())
        console.print(f"[bold]4.[/bold] a 90-token context for gpt-4o: {len(ctx.messages)} messages, "
                      f"{ctx.tokens} tokens ({spent})")
        for m in ctx.messages:
            console.print(f"   {m.role}: {m.text}")


@app.command()
def keygen() -> None:
    """Print a new random 256-bit encryption key (base64). Keep it safe: without it the data cannot be read."""
    from memvault.codecs import generate_key

    typer.echo(generate_key())


@app.command()
def rekey(
    url: UrlOpt = None,
    namespace: NsOpt = None,
    key: Annotated[str | None, typer.Option("--key", help="The new key (default: the first of $MEMVAULT_ENCRYPTION_KEY).")] = None,
    old_key: Annotated[list[str] | None, typer.Option("--old-key", help="A key the data may be under (repeatable).")] = None,
    retire_old_keys: Annotated[bool, typer.Option(
        "--retire-old-keys", help="Once every namespace is rekeyed: the store accepts only the new key.")] = False,
) -> None:
    """Re-encrypt a namespace's data under the new key (also encrypts data stored in clear). Safe while the app
    runs; resumable: run it again after an interruption. Prints a JSON report."""
    keys = ([key] if key else []) + list(old_key or [])
    keys = keys or env_keys() or []
    if not keys:
        err.print("[red]error:[/red] no key: pass --key (and --old-key ...) or set MEMVAULT_ENCRYPTION_KEY")
        raise typer.Exit(2)
    with _open_with(url, namespace, encryption=keys) as mem:
        try:
            report = mem.rekey(retire_old_keys=retire_old_keys)
        except MemvaultError as exc:
            _fail(exc)
        typer.echo(json.dumps({**dataclasses.asdict(report), "complete": report.complete}))
        if not report.complete:
            err.print(f"{report.raced} payloads changed while being re-encrypted: run rekey again")
            raise typer.Exit(1)


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    app()
