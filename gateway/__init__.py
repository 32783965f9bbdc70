"""gateway: WebSocket fan-out of md_service's books to many clients.

One Redis subscription per pair that local clients want; a local replica of each such
pair serves new subscribers (snapshot, then deltas) with no race; each delta is written
once as the bytes md_service published, to every subscriber, without awaiting any of them.
"""
