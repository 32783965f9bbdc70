"""``bookcast chaos``: the whole stack on loopback, faults on a schedule, every book checked.

Pure logic (the schedule, the exchange's own books, what was published, time to heal,
the comparison, the verdicts, the report) lives apart from process orchestration (the
tiers, the clients, the injected faults), so the logic is unit-tested without processes.
docs/operations.md ("Fault suite") says how to run it and read its figures.
"""
