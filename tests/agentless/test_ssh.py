"""SshHost, connect (TOFU host keys) and collect_over_ssh against a real sshd on
127.0.0.1, plus destination parsing and host-key values."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from patchwarden.agent.host import CommandNotFound, Host, LocalHost
from patchwarden.agent.inventory import collect_inventory
from patchwarden.agentless.ssh import (
    HostKeyChanged,
    KnownHostKey,
    SshConnection,
    SshHost,
    SshTarget,
    collect_over_ssh,
    connect,
    parse_destination,
)
from patchwarden.errors import HostKeyMismatch, InvalidInput, RemoteError
from tests.agentless.support import SshdFactory, target_for
from tests.sshd import SshServer, fingerprint, keygen

LOCAL = LocalHost("/")

# ----------------------------------------------------------------- destinations


@pytest.mark.parametrize(
    ("destination", "host", "address"),
    [
        ("root@web-01.example.com", "web-01.example.com", "web-01.example.com:2222"),
        ("deploy.bot_1@db1", "db1", "db1:2222"),
        ("admin@192.0.2.10", "192.0.2.10", "192.0.2.10:2222"),
        ("admin@[2001:db8::1]", "2001:db8::1", "[2001:db8::1]:2222"),
        ("admin@2001:DB8:0::1", "2001:db8::1", "[2001:db8::1]:2222"),
        ("admin@host.example.", "host.example.", "host.example.:2222"),
        ("machine$@fileserver", "fileserver", "fileserver:2222"),
    ],
)
def test_parse_destination_accepts(destination: str, host: str, address: str) -> None:
    target = parse_destination(destination, 2222, key_path="/keys/id_ed25519")
    assert target.host == host
    assert target.port == 2222
    assert target.username == destination.partition("@")[0]
    assert target.key_path == Path("/keys/id_ed25519")
    assert target.address == address


def test_parse_destination_defaults() -> None:
    assert parse_destination("root@host") == SshTarget(host="host", username="root")
    assert SshTarget(host="host", username="root").port == 22
    assert SshTarget(host="host", username="root").key_path is None


@pytest.mark.parametrize(
    "destination",
    [
        "",
        "host.example",  # no user
        "@host",
        "root@",
        "a@b@c",
        "-oProxyCommand=touch /tmp/x@host",
        "root@-oProxyCommand=evil",
        "us er@host",
        "user;id@host",
        "$(id)@host",
        "root@host;id",
        "root@host:22",  # the port is a separate argument
        "root@ho st",
        "root@host\n",
        "root@999.1.1.1",
        "root@10.0.0.256",
        "root@12345",
        "root@a..b",
        "root@-a.example",
        "root@a-.example",
        "root@" + "a" * 64 + ".example",
        "root@" + ".".join(["abcdefgh"] * 30),  # over 253 characters
        "root@[host]",
        "root@[::1",
        "a" * 33 + "@host",
    ],
)
def test_parse_destination_refuses(destination: str) -> None:
    with pytest.raises(InvalidInput, match="SSH"):
        parse_destination(destination)


@pytest.mark.parametrize("port", [0, -1, 65536, True, "22", 22.0])
def test_parse_destination_refuses_bad_ports(port: Any) -> None:
    with pytest.raises(InvalidInput, match="port"):
        parse_destination("root@host", port)


def test_target_validates_on_construction() -> None:
    with pytest.raises(InvalidInput, match="user name"):
        SshTarget(host="host", username="-x")
    with pytest.raises(InvalidInput, match="host"):
        SshTarget(host="bad host", username="root")
    with pytest.raises(InvalidInput, match="key path"):
        SshTarget(host="host", username="root", key_path="/k")  # type: ignore[arg-type]


def test_host_port_message_hint() -> None:
    with pytest.raises(InvalidInput, match="give the port separately"):
        parse_destination("root@host.example:2222")


# -------------------------------------------------------------------- host keys


def test_known_host_key_matches_ssh_keygen(tmp_path: Path) -> None:
    for key_type in ("ed25519", "ecdsa", "rsa"):
        path = keygen(tmp_path / f"k_{key_type}", key_type=key_type)
        public = path.with_name(path.name + ".pub")
        key = KnownHostKey.from_openssh(public.read_text())
        assert key.fingerprint_sha256 == fingerprint(public)
        assert key.to_openssh() == " ".join(public.read_text().split()[:2])
        assert KnownHostKey.from_blob(key.blob) == key


def test_known_host_key_refuses_inconsistent_values(tmp_path: Path) -> None:
    ed = KnownHostKey.from_openssh(
        keygen(tmp_path / "ed", key_type="ed25519").with_suffix(".pub").read_text()
    )
    ec = KnownHostKey.from_openssh(
        keygen(tmp_path / "ec", key_type="ecdsa").with_suffix(".pub").read_text()
    )
    with pytest.raises(InvalidInput, match="fingerprint"):
        KnownHostKey(ed.key_type, ed.key_base64, ec.fingerprint_sha256)
    with pytest.raises(InvalidInput, match="does not hold"):
        KnownHostKey(ec.key_type, ed.key_base64, ed.fingerprint_sha256)
    with pytest.raises(InvalidInput, match="base64"):
        KnownHostKey(ed.key_type, ed.key_base64 + "!", ed.fingerprint_sha256)
    with pytest.raises(InvalidInput, match="type"):
        KnownHostKey("ssh ed25519", ed.key_base64, ed.fingerprint_sha256)
    with pytest.raises(InvalidInput, match="OpenSSH public key"):
        KnownHostKey.from_openssh("ssh-ed25519")
    assert ed.same_key(KnownHostKey.from_blob(ed.blob))
    assert not ed.same_key(ec)


# ------------------------------------------------------------------ host: files


def _as_host(host: SshHost) -> Host:
    """mypy checks here that SshHost satisfies the collectors' Host protocol."""
    return host


def test_ssh_host_is_the_live_root(ssh_host: SshHost) -> None:
    host = _as_host(ssh_host)
    assert host.root == "/"
    assert host.is_live is True


def test_read_text_matches_local_files(ssh_host: SshHost) -> None:
    for path in ("/etc/os-release", "/etc/passwd", "/proc/sys/kernel/osrelease"):
        local = LOCAL.read_text(path)
        assert local is not None
        assert ssh_host.read_text(path) == local
    # Paths are inside the host root, "/" here, as with LocalHost.
    assert ssh_host.read_text("etc/os-release") == LOCAL.read_text("/etc/os-release")


def test_read_text_large_file(ssh_host: SshHost, tmp_path: Path) -> None:
    path = tmp_path / "large.txt"
    path.write_bytes(b"".join(b"line %07d\n" % n for n in range(400_000)))  # 5.2 MB
    assert ssh_host.read_text(str(path)) == LOCAL.read_text(str(path))


def test_read_text_replaces_invalid_utf8_like_local(ssh_host: SshHost, tmp_path: Path) -> None:
    path = tmp_path / "latin1.txt"
    path.write_bytes("café ü\n".encode("latin-1") + b"\xff\xfe end")
    text = ssh_host.read_text(str(path))
    assert text == LOCAL.read_text(str(path))
    assert text is not None
    assert "\ufffd" in text


def test_read_text_absent_or_unreadable_is_none(ssh_host: SshHost, tmp_path: Path) -> None:
    assert ssh_host.read_text(str(tmp_path / "absent")) is None
    assert ssh_host.read_text(str(tmp_path / "absent" / "deeper")) is None
    assert ssh_host.read_text(str(tmp_path)) is None  # a directory


def test_read_text_refuses_more_than_the_limit(connection: SshConnection, tmp_path: Path) -> None:
    path = tmp_path / "big"
    path.write_bytes(b"x" * 5000)
    small = SshHost(connection, max_output_bytes=1000)
    with pytest.raises(RemoteError, match="larger than 1000 bytes"):
        small.read_text(str(path))


def test_list_dir_matches_local(ssh_host: SshHost, tmp_path: Path) -> None:
    for name in ("b", "a", "with space", ".hidden"):
        (tmp_path / name).write_text("")
    (tmp_path / "sub").mkdir()
    assert ssh_host.list_dir(str(tmp_path)) == [".hidden", "a", "b", "sub", "with space"]
    for path in ("/etc", "/usr/bin", "/var/lib/dpkg"):
        assert ssh_host.list_dir(path) == LOCAL.list_dir(path)


def test_list_dir_absent_or_not_a_directory_is_none(ssh_host: SshHost, tmp_path: Path) -> None:
    assert ssh_host.list_dir(str(tmp_path / "absent")) is None
    (tmp_path / "file").write_text("x")
    assert ssh_host.list_dir(str(tmp_path / "file")) is None


def test_which_matches_local(ssh_host: SshHost) -> None:
    for program in ("sh", "uname", "dpkg-query", "sshd", "ssh-keygen", "no-such-program-pw"):
        assert ssh_host.which(program) == LOCAL.which(program), program
    assert ssh_host.which("sh") is not None
    assert ssh_host.which("no-such-program-pw") is None


@pytest.mark.parametrize("program", ["", "/bin/sh", "bin/sh", "../sh", "s\0h"])
def test_which_refuses_paths_and_junk(ssh_host: SshHost, program: str) -> None:
    assert ssh_host.which(program) is None


# -------------------------------------------------------------- host: commands


def test_run_uname_matches_local(ssh_host: SshHost) -> None:
    result = ssh_host.run(["uname", "-r"])
    assert result.returncode == 0
    assert result.stdout.strip() == os.uname().release
    assert result.stderr == ""


def test_run_passes_hostile_argument_verbatim(ssh_host: SshHost, tmp_path: Path) -> None:
    canary = tmp_path / "canary"
    nasty = f"a b; $(id) 'q' `touch {canary}` && touch {canary} | cat > {canary} & $HOME *"
    result = ssh_host.run(["printf", "%s", nasty])
    assert result.returncode == 0
    assert result.stdout == nasty
    assert not canary.exists()


def test_run_keeps_every_argument_separate(ssh_host: SshHost) -> None:
    arguments = ["a b", "", "'", '"', "\\", "$HOME", "`id`", "*", "-n", "~", "#x", "ü€", "\t"]
    result = ssh_host.run(["printf", "<%s>\\n", *arguments])
    assert result.stdout.splitlines() == [f"<{argument}>" for argument in arguments]


def test_run_uses_the_fixed_locale_and_path(ssh_host: SshHost) -> None:
    result = ssh_host.run(["sh", "-c", 'printf "%s|%s|%s" "$LC_ALL" "$LANG" "$PATH"'])
    assert result.stdout == "C|C|/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def test_run_propagates_exit_status_and_stderr(ssh_host: SshHost) -> None:
    result = ssh_host.run(["sh", "-c", "echo out; echo err >&2; exit 7"])
    assert (result.returncode, result.stdout, result.stderr) == (7, "out\n", "err\n")
    assert ssh_host.run(["false"]).returncode == 1
    assert ssh_host.run(["/bin/true"]).returncode == 0


def test_run_reads_large_stdout_and_stderr_together(ssh_host: SshHost) -> None:
    # Both streams well beyond the SSH window: reading one only would deadlock.
    script = "head -c 3000000 /dev/zero | tr '\\0' o; head -c 3000000 /dev/zero | tr '\\0' e >&2"
    result = ssh_host.run(["sh", "-c", script], timeout=60)
    assert result.returncode == 0
    assert result.stdout == "o" * 3_000_000
    assert result.stderr == "e" * 3_000_000


def test_run_refuses_more_output_than_the_limit(connection: SshConnection) -> None:
    small = SshHost(connection, max_output_bytes=1000)
    with pytest.raises(RemoteError, match="more than 1000 bytes"):
        small.run(["head", "-c", "100000", "/dev/zero"])


def test_run_missing_program_is_command_not_found(ssh_host: SshHost) -> None:
    with pytest.raises(CommandNotFound, match="no-such-program-pw"):
        ssh_host.run(["no-such-program-pw", "--version"])
    with pytest.raises(CommandNotFound, match="/usr/bin/no-such-program-pw"):
        ssh_host.run(["/usr/bin/no-such-program-pw"])


@pytest.mark.parametrize(
    "argv",
    [[], ["printf", "a\nb"], ["printf", "a\rb"], ["printf", "a\0b"], ["bin/sh"], "uname -r"],
)
def test_run_refuses_bad_argv(ssh_host: SshHost, argv: Any) -> None:
    with pytest.raises(ValueError, match=r"command|argument|program"):
        ssh_host.run(argv)


def test_run_timeout_raises_timeout_expired_and_connection_survives(ssh_host: SshHost) -> None:
    started = time.monotonic()
    with pytest.raises(subprocess.TimeoutExpired):
        ssh_host.run(["sleep", "30"], timeout=0.5)
    assert time.monotonic() - started < 5
    assert ssh_host.run(["echo", "still here"]).stdout == "still here\n"


def test_lost_connection_is_an_error_not_an_absent_file(connection: SshConnection) -> None:
    host = SshHost(connection)
    assert host.read_text("/etc/os-release") is not None
    connection.close()
    with pytest.raises(RemoteError, match=r"127\.0\.0\.1"):
        host.read_text("/etc/os-release")
    with pytest.raises(RemoteError):
        host.list_dir("/etc")
    with pytest.raises(RemoteError):
        host.which("sh")
    with pytest.raises(RemoteError):
        host.run(["/bin/true"])


def test_server_without_sftp_is_a_clear_error(sshd_factory: SshdFactory) -> None:
    server = sshd_factory(sftp=False)
    with connect(target_for(server), None, timeout=10) as connection:
        host = SshHost(connection)
        with pytest.raises(RemoteError, match="needs the SSH server's sftp subsystem"):
            host.read_text("/etc/os-release")
        with pytest.raises(RemoteError, match="sftp subsystem"):
            host.run(["uname", "-r"])  # finding the program needs SFTP too


# -------------------------------------------------------- connect: trust on first use


def _wait_for_log(server: SshServer, text: str) -> str:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        log = server.log_since_start()
        if text in log:
            return log
        time.sleep(0.05)
    raise AssertionError(f"sshd never logged {text!r}:\n{server.log_since_start()}")


def test_first_use_returns_the_key_and_second_use_requires_it(sshd_factory: SshdFactory) -> None:
    server = sshd_factory()
    target = target_for(server)
    with connect(target, None, timeout=10) as first:
        assert first.first_use is True
        trusted = first.host_key
    assert trusted == KnownHostKey.from_openssh(server.host_public_key())
    assert trusted.fingerprint_sha256 == server.host_key_fingerprint()

    with connect(target, trusted, timeout=10) as second:
        assert second.first_use is False
        assert second.host_key == trusted
        assert SshHost(second).run(["/bin/true"]).returncode == 0
    # The log shows authentication, so its absence below means something.
    _wait_for_log(server, "Accepted publickey")


def test_changed_host_key_is_refused_before_authentication(sshd_factory: SshdFactory) -> None:
    server = sshd_factory()
    target = target_for(server)
    with connect(target, None, timeout=10) as first:
        trusted = first.host_key

    server.rotate_host_key()
    rotated = KnownHostKey.from_openssh(server.host_public_key())
    assert not rotated.same_key(trusted)

    with pytest.raises(HostKeyMismatch) as caught:
        connect(target, trusted, timeout=10)
    error = caught.value
    assert isinstance(error, HostKeyChanged)
    assert isinstance(error, RemoteError)
    assert error.code == "host_key_mismatch"
    assert error.trusted == trusted
    assert error.presented == rotated
    message = str(error)
    assert trusted.fingerprint_sha256 in message
    assert rotated.fingerprint_sha256 in message
    assert f"127.0.0.1:{server.port}" in message
    assert "clear the stored host key" in message

    # sshd saw the connection but no authentication attempt at all.
    log = _wait_for_log(server, "[preauth]")
    assert "publickey" not in log
    assert "Accepted" not in log

    # Re-trusting: connecting without a stored key accepts (and returns) the new one.
    with connect(target, None, timeout=10) as retrusted:
        assert retrusted.host_key == rotated


def test_trusted_key_of_another_type_is_a_mismatch(
    sshd_factory: SshdFactory, tmp_path: Path
) -> None:
    server = sshd_factory()  # ed25519 host key only
    other = keygen(tmp_path / "ecdsa_host", key_type="ecdsa")
    trusted = KnownHostKey.from_openssh(other.with_suffix(".pub").read_text())
    with pytest.raises(HostKeyChanged, match=r"ecdsa-sha2-nistp256 SHA256:.*ssh-ed25519 SHA256:"):
        connect(target_for(server), trusted, timeout=10)


def test_trusted_key_type_is_asked_for_first(sshd_factory: SshdFactory) -> None:
    # A server with several host keys: whichever was trusted is the one checked,
    # not whichever paramiko would prefer.
    server = sshd_factory(host_key_types=("ed25519", "ecdsa", "rsa"))
    target = target_for(server)
    for key_type in ("ecdsa", "rsa", "ed25519"):
        trusted = KnownHostKey.from_openssh(server.host_public_key(key_type))
        with connect(target, trusted, timeout=10) as connection:
            assert connection.host_key == trusted, key_type


# ------------------------------------------------------------ connect: failures


def test_wrong_client_key_is_remote_error(sshd: SshServer, tmp_path: Path) -> None:
    stranger = keygen(tmp_path / "id_stranger")
    with pytest.raises(
        RemoteError, match=re.escape(f"authentication to 127.0.0.1:{sshd.port}")
    ) as caught:
        connect(target_for(sshd, stranger), None, timeout=10)
    assert not isinstance(caught.value, HostKeyMismatch)


def test_user_not_allowed_is_remote_error(sshd: SshServer) -> None:
    target = SshTarget(
        host=sshd.host, port=sshd.port, username="nobody", key_path=sshd.client_key_path
    )
    with pytest.raises(RemoteError, match="as nobody failed"):
        connect(target, None, timeout=10)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_nothing_listening_is_remote_error(sshd: SshServer) -> None:
    port = _free_port()
    target = SshTarget(host="127.0.0.1", port=port, username="root", key_path=sshd.client_key_path)
    with pytest.raises(RemoteError, match=re.escape(f"127.0.0.1:{port}: connection refused")):
        connect(target, None, timeout=5)


@pytest.fixture
def silent_listener() -> Iterator[int]:
    """A port that accepts TCP connections and never says anything."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        yield listener.getsockname()[1]


def test_server_that_never_answers_times_out(sshd: SshServer, silent_listener: int) -> None:
    target = SshTarget(
        host="127.0.0.1", port=silent_listener, username="root", key_path=sshd.client_key_path
    )
    started = time.monotonic()
    with pytest.raises(RemoteError, match=re.escape(f"127.0.0.1:{silent_listener}")):
        connect(target, None, timeout=0.5)
    assert time.monotonic() - started < 5


@pytest.fixture
def http_listener() -> Iterator[int]:
    """A port whose server speaks HTTP, not SSH."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)

    def answer() -> None:
        try:
            peer, _ = listener.accept()
        except OSError:
            return
        with peer:
            peer.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()
        thread.join(timeout=5)


def test_server_that_is_not_ssh_is_remote_error(sshd: SshServer, http_listener: int) -> None:
    target = SshTarget(
        host="127.0.0.1", port=http_listener, username="root", key_path=sshd.client_key_path
    )
    with pytest.raises(RemoteError, match=re.escape(f"127.0.0.1:{http_listener}")):
        connect(target, None, timeout=5)


def test_unusable_key_files_are_invalid_input(sshd: SshServer, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="cannot read SSH private key"):
        connect(target_for(sshd, tmp_path / "absent"), None, timeout=5)
    public = sshd.client_key_path.with_name(sshd.client_key_path.name + ".pub")
    with pytest.raises(InvalidInput, match="not an SSH private key"):
        connect(target_for(sshd, public), None, timeout=5)
    encrypted = tmp_path / "id_encrypted"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "secret", "-f", str(encrypted)],
        check=True,
        capture_output=True,
    )
    with pytest.raises(InvalidInput, match="passphrase"):
        connect(target_for(sshd, encrypted), None, timeout=5)


def test_connection_closes_with_its_context(target: SshTarget) -> None:
    with connect(target, None, timeout=10) as connection:
        assert connection.is_open()
    assert not connection.is_open()
    with pytest.raises(RemoteError, match="closed"):
        connection.check_open()
    connection.close()  # closing twice is harmless


# ------------------------------------------------------------------- collection


def test_collect_over_ssh_matches_local_collection(sshd: SshServer, target: SshTarget) -> None:
    if LOCAL.read_text("/var/lib/dpkg/status") is None:
        pytest.skip("this machine has no dpkg database to compare")
    inventory, host_key = collect_over_ssh(target, None, timeout=10)
    local = collect_inventory(LOCAL)

    assert host_key == KnownHostKey.from_openssh(sshd.host_public_key())

    def deb_packages(packages: list[Any]) -> set[tuple[Any, ...]]:
        return {
            (p["name"], p["version"], p["arch"], p["source_name"], p["status"])
            for p in packages
            if p["ecosystem"] == "deb"
        }

    remote_debs = deb_packages(inventory["packages"])
    assert len(remote_debs) > 50
    assert remote_debs == deb_packages(local["packages"])
    assert inventory["facts"]["os"] == local["facts"]["os"]
    for fact in ("hostname", "kernel", "arch", "machine_id"):
        assert inventory["facts"].get(fact) == local["facts"].get(fact), fact
    statuses = {note["collector"]: note["status"] for note in inventory["collector_notes"]}
    assert statuses == {note["collector"]: note["status"] for note in local["collector_notes"]}

    # Later collections present the stored key.
    again, same_key = collect_over_ssh(target, host_key, timeout=10)
    assert same_key == host_key
    assert deb_packages(again["packages"]) == remote_debs


def test_collect_over_ssh_refuses_a_changed_host_key(target: SshTarget, tmp_path: Path) -> None:
    impostor = keygen(tmp_path / "impostor")
    trusted = KnownHostKey.from_openssh(impostor.with_suffix(".pub").read_text())
    with pytest.raises(HostKeyMismatch):
        collect_over_ssh(target, trusted, timeout=10)
