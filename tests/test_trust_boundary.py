"""The trust boundary, end to end: no redirect, display, child process or malformed key may move a key
or the conversation where it does not belong.

Each test runs the real `hermes` against loopback fakes and asserts what the user and each host saw.
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import Hermes
from tests.fakeserver import FakeServer, Reply, Status

KEY = "sk-myplan-key-0001"


def redirect(status: int, target: FakeServer, path: str = "/chat/completions") -> Status:
    return Status(status, {"error": {"message": "moved"}}, headers={"Location": f"{target.base_url}{path}"})


# -- redirects ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
@pytest.mark.parametrize("stream", [True, False])
def test_a_redirect_is_an_endpoint_error_and_nothing_is_resent(
    myplan: Hermes, fake: FakeServer, fake2: FakeServer, status: int, stream: bool
) -> None:
    fake.always(redirect(status, fake2))
    fake2.always(Reply("the other host answered"))
    args = ["ask", "-m", "myplan:model-a", "hello, secret conversation"] + ([] if stream else ["--no-stream"])
    result = myplan.run(*args)
    assert result.returncode == 5, (result.stdout, result.stderr)
    assert result.stdout == ""
    assert "other host" not in result.stderr
    assert f"HTTP {status}" in result.stderr
    assert f"{fake2.base_url}/chat/completions" in result.stderr  # the Location, so the user can decide
    assert "base_url" in result.stderr
    assert "Traceback" not in result.stderr and KEY not in result.stderr
    assert fake2.log == [], "the redirect target must receive nothing"
    assert len(fake.requests()) == 1, "a redirect is not retried"


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_models_does_not_follow_a_redirect(myplan: Hermes, fake: FakeServer, fake2: FakeServer, status: int) -> None:
    fake.models = redirect(status, fake2, "/models")
    fake2.models = ["evil-model"]
    result = myplan.run("models", "-p", "myplan")
    assert result.returncode == 5, (result.stdout, result.stderr)
    assert "evil-model" not in result.stdout
    assert f"HTTP {status}" in result.stderr
    assert fake2.log == []


def test_a_redirect_does_not_fall_back_or_rotate(myplan: Hermes, fake: FakeServer, fake2: FakeServer) -> None:
    myplan.env["MYPLAN_API_KEYS"] = "sk-myplan-key-0002,sk-myplan-key-0003"
    fake.always(redirect(307, fake2))
    result = myplan.run("ask", "-m", "myplan:model-a", "hi", "--json")
    assert result.returncode == 5
    assert [r.key for r in fake.requests()] == [KEY]
    assert fake2.log == []
    state = json.loads((myplan.home / "state" / "credentials.json").read_text()) \
        if (myplan.home / "state" / "credentials.json").exists() else {}
    assert "exhausted" not in json.dumps(state)
