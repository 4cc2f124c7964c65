"""Shared fixtures. Integration tests run on the real local stack, each session in its own namespace
(topic and database prefix) so that tests never see the demo's data or another run's."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator

import pytest

from hub import acl, devstack
from hub.config import Settings
from hub.db import drop_namespaces
from hub.topics import create_topics, delete_topics


@pytest.fixture(scope="session")
def stack() -> Iterator[Settings]:
    """The broker and database, started once per session (and stopped only if this session started them)."""
    base = Settings()
    started = devstack.up(base, say=lambda _m: None)
    yield base
    if any(started.values()):
        devstack.down(base, say=lambda _m: None)


@pytest.fixture(scope="session")
def namespaces(stack: Settings) -> Iterator[Callable[[], Settings]]:
    """Make isolated settings (fresh topics and databases); all are removed at the end of the session."""
    made: list[Settings] = []

    def make(**overrides) -> Settings:
        settings = stack.model_copy(update={"namespace": f"t{uuid.uuid4().hex[:10]}_", **overrides})
        create_topics(settings)
        made.append(settings)
        return settings

    yield make
    if not made:
        return
    with contextlib.suppress(Exception):
        delete_topics(*made)
    with contextlib.suppress(Exception):
        acl.remove(*made)
    with contextlib.suppress(Exception):
        drop_namespaces(stack, [s.namespace for s in made])


@pytest.fixture
def hub_settings(namespaces: Callable[[], Settings]) -> Settings:
    """A fresh namespace per test."""
    return namespaces()
