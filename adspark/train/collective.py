"""What a training process needs from its peers: rank, size, averaging and broadcast.

The training loop talks only to a :class:`Collective`; Horovod is one implementation
(:class:`HorovodCollective`), a single process is another (:class:`LocalCollective`, also the
in-process test double). Nothing else in adspark imports horovod.
"""

from __future__ import annotations

from typing import Any, Protocol, Sequence


class Collective(Protocol):
    """The collective operations a data-parallel training loop uses."""

    rank: int
    size: int
    local_rank: int

    def mean(self, value: Any, name: str) -> Any:
        """Average a tensor across processes."""

    def mean_all(self, values: Sequence[Any], name: str) -> list[Any]:
        """Average several tensors across processes in one collective operation."""

    def gradient_tape(self, tape: Any) -> Any:
        """Wrap a ``tf.GradientTape`` so gradients are averaged across processes."""

    def broadcast(self, variables: Sequence[Any]) -> None:
        """Copy rank 0's variable values to every process."""


class LocalCollective:
    """One process: every operation is the identity."""

    rank = 0
    size = 1
    local_rank = 0
    local_size = 1

    def mean(self, value: Any, name: str) -> Any:
        """The value itself."""
        return value

    def mean_all(self, values: Sequence[Any], name: str) -> list[Any]:
        """The values themselves."""
        return list(values)

    def gradient_tape(self, tape: Any) -> Any:
        """The tape itself."""
        return tape

    def broadcast(self, variables: Sequence[Any]) -> None:
        """Nothing to copy."""


class HorovodCollective:
    """Horovod (Gloo on CPU, NCCL where built) for TensorFlow; call inside a Horovod process."""

    def __init__(self) -> None:
        import horovod.tensorflow as hvd

        hvd.init()
        self._hvd = hvd
        self.rank = hvd.rank()
        self.size = hvd.size()
        self.local_rank = hvd.local_rank()
        self.local_size = hvd.local_size()

    def mean(self, value: Any, name: str) -> Any:
        """Allreduce-average ``value``."""
        return self._hvd.allreduce(value, average=True, name=name)

    def mean_all(self, values: Sequence[Any], name: str) -> list[Any]:
        """One grouped allreduce (one negotiation for all the tensors)."""
        return list(self._hvd.grouped_allreduce(list(values), op=self._hvd.Average, name=name))

    def gradient_tape(self, tape: Any) -> Any:
        """A ``DistributedGradientTape``."""
        return self._hvd.DistributedGradientTape(tape)

    def broadcast(self, variables: Sequence[Any]) -> None:
        """Broadcast from rank 0."""
        self._hvd.broadcast_variables(list(variables), root_rank=0)
