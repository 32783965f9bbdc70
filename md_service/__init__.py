"""md_service: the single source of truth for every book.

Consumes exchange events from Kafka, keeps each pair's full book, closes a window every
50–100 ms, gives each non-empty window's delta the pair's next seq, and writes it to Redis
(Pub/Sub + history + state + the Kafka offset to resume from) in one atomic step fenced
by the partition's owner token. See docs/md_service.md.
"""
