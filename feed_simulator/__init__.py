"""The simulated exchange: per-pair order books whose events go to Kafka (key = pair).

``market`` and ``source`` are pure (seeded ``random.Random``, time passed in); ``producer``
paces them into a Kafka producer and reports the delivered rate; ``cli`` is the command.
"""
