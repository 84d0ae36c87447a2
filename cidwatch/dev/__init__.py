"""Development tools, fenced from the product: the local Kafka broker (`cidwatch broker`, which needs a
repository checkout for its `pom.xml` and jar cache), the traffic simulator and the one-command demo.
Nothing in rules/, streams/, dashboards/ or the rest of cidwatch/ imports them (tests/test_layers.py)."""
