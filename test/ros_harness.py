"""In-process rclpy for tests: a private Context, nodes, an executor, and spinning until a condition holds.

Every harness inits rclpy in its own `rclpy.context.Context` on the ROS_DOMAIN_ID that
test/conftest.py picks at random per test run (with ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST), so
concurrent test runs on one machine seldom share traffic, and leaves nothing behind: nodes, executor and context
are shut down on exit even when the test fails. Publishers and subscriptions live in one process,
where a 640x480 image crosses in about a millisecond.

Use it as a context manager, or wrap it in a fixture in your test module::

    from ros_harness import RosHarness

    @pytest.fixture
    def ros():
        with RosHarness() as harness:
            yield harness

    def test_echo(ros):
        received = ros.exchange(String, [String(data="hi")])   # publish, wait, return what arrived
        assert received[0].data == "hi"

    def test_service(ros):
        node = ros.node("server")              # a real rclpy Node in the harness's context
        ...                                    # create services, timers, publishers on it
        assert ros.spin_until(lambda: done, timeout=5.0)

    def test_my_node(ros):
        mine = ros.add_node(MyNode(context=ros.context))   # a Node subclass built in the harness's context

`exchange` matches QoS on both ends (reliable, keep last `depth` by default) and waits for the
subscription to be discovered before publishing, because a volatile publisher drops what it sends
before the match.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import rclpy
from rclpy.context import Context
from rclpy.executors import Executor, MultiThreadedExecutor, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy

_names = itertools.count()


class RosHarness:
    """rclpy in a private Context with one executor spinning every node it creates.

    `executor`: "single" (SingleThreadedExecutor, the default) or "multi" (MultiThreadedExecutor with
    `threads` threads, for nodes that use callback groups). `domain_id` defaults to ROS_DOMAIN_ID.
    """

    def __init__(self, executor: str = "single", threads: int = 2, domain_id: int | None = None) -> None:
        if executor not in ("single", "multi"):
            raise ValueError(f"RosHarness: executor must be 'single' or 'multi', got {executor!r}")
        self._kind = executor
        self._threads = threads
        self._domain_id = domain_id if domain_id is not None else int(os.environ.get("ROS_DOMAIN_ID", "0"))
        self.context: Context | None = None
        self.executor: Executor | None = None
        self.nodes: list[Node] = []

    def __enter__(self) -> RosHarness:
        self.context = Context()
        rclpy.init(context=self.context, domain_id=self._domain_id)
        if self._kind == "single":
            self.executor = SingleThreadedExecutor(context=self.context)
        else:
            self.executor = MultiThreadedExecutor(num_threads=self._threads, context=self.context)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.executor is not None:
            self.executor.shutdown(timeout_sec=2.0)
        for node in self.nodes:
            node.destroy_node()
        self.nodes.clear()
        if self.context is not None:
            self.context.try_shutdown()

    def node(self, name: str | None = None, **kwargs: Any) -> Node:
        """A Node in this harness's context, added to its executor (`kwargs` go to `Node`)."""
        if self.context is None or self.executor is None:
            raise RuntimeError("RosHarness.node: enter the harness (with RosHarness() as ros:) first")
        return self.add_node(Node(name or f"harness_node_{next(_names)}", context=self.context, **kwargs))

    def add_node(self, node: Node) -> Node:
        """Spin a node built elsewhere (in `self.context`) with the others, and destroy it on exit."""
        self.executor.add_node(node)
        self.nodes.append(node)
        return node

    def spin_until(self, predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
        """Spin the executor until `predicate()` is true (returns True) or `timeout` seconds pass (False)."""
        deadline = time.monotonic() + timeout
        while not predicate():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self.executor.spin_once(timeout_sec=min(0.05, remaining))
        return True

    def spin_for(self, seconds: float) -> None:
        """Spin the executor for `seconds` whatever happens."""
        self.spin_until(lambda: False, timeout=seconds)

    def exchange(
        self,
        msg_type: type,
        messages: Sequence[Any],
        topic: str | None = None,
        qos: QoSProfile | None = None,
        timeout: float = 10.0,
    ) -> list[Any]:
        """Publish `messages` from one node and return them as received by a subscription on another.

        Both ends use `qos` (default: reliable, keep last len(messages)). Raises TimeoutError when the
        subscription is not matched or not every message arrives within `timeout` seconds.
        """
        qos = qos or QoSProfile(depth=max(len(messages), 1), reliability=ReliabilityPolicy.RELIABLE)
        topic = topic or f"harness_topic_{next(_names)}"
        received: list[Any] = []
        subscriber = self.node()
        subscriber.create_subscription(msg_type, topic, received.append, qos)
        publisher = self.node().create_publisher(msg_type, topic, qos)
        if not self.spin_until(lambda: publisher.get_subscription_count() > 0, timeout):
            raise TimeoutError(f"RosHarness.exchange: no subscription matched {topic!r} within {timeout} s")
        for msg in messages:
            publisher.publish(msg)
        if not self.spin_until(lambda: len(received) >= len(messages), timeout):
            raise TimeoutError(
                f"RosHarness.exchange: {len(received)} of {len(messages)} {msg_type.__name__} messages "
                f"arrived on {topic!r} within {timeout} s"
            )
        return received
