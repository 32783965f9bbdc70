"""A fake Kafka producer for the feed's unit tests: it confirms, fails or keeps messages on demand."""


class FakeKafkaError:
    def str(self):
        return "broker said no"


class FakeProducer:
    """Confirms or fails messages on poll/flush, except the newest ``lose_on_flush`` ones.

    Its queue is full on every ``buffer_every``-th produce.
    """

    def __init__(self, fail_every=0, lose_on_flush=0, buffer_every=0):
        self.pending = []
        self.produced = []
        self.fail_every = fail_every
        self.lose_on_flush = lose_on_flush
        self.buffer_every = buffer_every
        self.buffer_errors = 0
        self.served = 0
        self._calls = 0

    def produce(self, topic, value, key, partition, on_delivery):
        self._calls += 1
        if self.buffer_every and self._calls % self.buffer_every == 0:
            self.buffer_errors += 1
            raise BufferError("queue full")
        self.produced.append((topic, key, value))
        self.pending.append(on_delivery)

    def _serve(self, keep=0):
        cut = len(self.pending) - keep
        serve, self.pending = self.pending[:cut], self.pending[cut:]
        for callback in serve:
            self.served += 1
            failed = self.fail_every and self.served % self.fail_every == 0
            callback(FakeKafkaError() if failed else None, None)
        return len(serve)

    def poll(self, timeout):
        return self._serve(keep=self.lose_on_flush)

    def flush(self, timeout):
        self._serve(keep=self.lose_on_flush)
        return len(self.pending)

    def __len__(self):
        return len(self.pending)
