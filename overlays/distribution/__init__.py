"""Distribution: making nodes hold their desired files (DESIGN 4).

=================  ==========================================================
module             holds
=================  ==========================================================
``plan``           pure: render a node's files within a scope, hash them,
                   compare with what was deployed (``Plan``)
``apply``          carry a plan out over an open ``Transport``: uploads,
                   removals, reloads (``ApplyOutcome``)
``coordination``   one sync per node at a time and coalescing of requests
                   (Redis, or process-local without it)
``run``            one node's sync pass and its record (``sync_once``), the
                   drain loop (``run_sync``), several nodes (``sync_many``)
``drift``          compare the files on a node with what was deployed
``refresh``        read a node's facts over a transport (no writes)
``queue``          ``request_sync`` and the Celery tasks ``sync_node`` and
                   ``sync_nodes``: the only place that enqueues syncs
=================  ==========================================================

Imports: ``nodes`` (models, transports, facts), the pure overlay modules
(``filegroups``, ``snapshot``, ``desired``, ``generators``), ``overlays.selectors``
and each other in the order above. Never ``overlays.services``,
``overlays.changes`` or ``overlays.tasks``: a sync records deployments and the
node's sync status, and never writes domain data (keys, rules, node facts).
"""
