import pytest


def pytest_collection_modifyitems(items):
    for item in items:
        if "/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def web_world(namespaces, tmp_path_factory):
    """The web tests' namespace: history, agencies, ledger, the register running, the web server
    (tests/web_world.py)."""
    from tests.web_world import build

    world = build(namespaces(agencies=("bank", "transport")), tmp_path_factory.mktemp("web"))  # two suffice
    yield world
    world.stop()
