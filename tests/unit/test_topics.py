"""Topic settings: replication that means what it says."""


def test_topics_are_never_created_weaker_than_the_cluster_asks():
    from hub.config import Settings
    from hub.topics import topic_specs

    assert {s.config["min.insync.replicas"] for s in topic_specs(Settings())} == {"1"}
    assert {s.config["min.insync.replicas"] for s in topic_specs(Settings(replication_factor=3))} == {"2"}
    three = Settings(replication_factor=3, min_insync_replicas=3)
    assert {s.config["min.insync.replicas"] for s in topic_specs(three)} == {"3"}
