"""`sensei --version` and `sensei completion bash|zsh`."""

from __future__ import annotations

import asyncio
import importlib.metadata

from cli.app import package_version
from cli.errors import ExitCode
from tests.cli.conftest import RUN_SECONDS, Cli

COMMANDS = [
    "login", "migrations", "verifications", "certificates", "patterns", "signing-keys",
    "completion",
]  # fmt: skip
LIFECYCLE = ["create", "start", "advance", "pause", "resume", "complete", "fail", "cancel"]


async def _bash(script: str, stdin: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        "bash", "-c", script,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(stdin.encode()), RUN_SECONDS)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def _printed(cli: Cli, shell: str) -> str:
    process = await cli.spawn("completion", shell)
    out, err = await asyncio.wait_for(process.communicate(), RUN_SECONDS)
    assert process.returncode == ExitCode.OK, err.decode()
    return out.decode()


async def test_version_prints_the_installed_package_version(cli: Cli) -> None:
    process = await cli.spawn("--version")
    out, _ = await asyncio.wait_for(process.communicate(), RUN_SECONDS)

    assert process.returncode == ExitCode.OK
    assert out.decode() == f"sensei {importlib.metadata.version('sensei')}\n"


def test_version_of_a_checkout_that_is_not_installed_says_so() -> None:
    assert package_version("sensei-never-installed").startswith("unknown (not installed")


async def test_bash_completion_script_is_valid_bash_naming_every_command(cli: Cli) -> None:
    script = await _printed(cli, "bash")

    code, _, err = await _bash("bash -n", script)

    assert code == 0, err
    assert "complete " in script and " sensei" in script
    for command in [*COMMANDS, *LIFECYCLE, "report-progress"]:
        assert command in script, command


async def test_bash_completion_completes_commands_and_verbs(cli: Cli) -> None:
    script = await _printed(cli, "bash")
    # Reads the script from stdin, then asks its function what TAB offers.
    ask = """
        source /dev/stdin
        complete_words() { COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 )); COMPREPLY=();
                           _shtab_sensei; echo "${COMPREPLY[*]}"; }
        complete_words sensei ""
        complete_words sensei migrations re
        complete_words sensei signing-keys ""
    """

    code, out, err = await _bash(ask, script)

    assert code == 0, err
    top, migrations, signing_keys = out.splitlines()
    assert sorted(top.split()) == sorted([*COMMANDS, "logout"])
    assert sorted(migrations.split()) == ["report-progress", "resume"]
    assert sorted(signing_keys.split()) == ["revoke", "rotate"]


async def test_zsh_completion_script_names_every_command(cli: Cli) -> None:
    script = await _printed(cli, "zsh")

    assert script.startswith("#compdef sensei")
    for command in [*COMMANDS, *LIFECYCLE, "report-progress"]:
        assert command in script, command


async def test_an_unknown_shell_is_a_usage_error(cli: Cli) -> None:
    result = await cli.run("completion", "fish")

    assert result.code == ExitCode.USAGE
    assert "invalid choice: 'fish'" in result.err
