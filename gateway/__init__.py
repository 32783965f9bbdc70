"""gateway: WebSocket fan-out of md_service's books to many clients (docs/gateway.md).

One Redis subscription per pair that local clients want; a local replica of each such
pair serves new subscribers (snapshot, then deltas, or the missed deltas for ``since``)
with no race; the deltas of one window are packed into one frame per distinct set of
pairs, built once from the bytes md_service published and written to every client of the
set without awaiting any of them; a client that falls behind is healed with snapshots.
"""
