"""Distribution: making nodes hold their desired files (DESIGN 4).

=================  ==========================================================
module             holds
=================  ==========================================================
``plan``           pure: render a node's files within a scope, hash them,
                   compare with what was deployed (``Plan``)
``precheck``       checks of new files before they go live: commands on the
                   node, the pre-shared keys parsed back here
``confirm``        commit confirmed: the node's revert timer, its backups
                   and verdict, cancelled over a new connection
``apply``          carry a plan out over an open ``Transport``: remove what
                   interrupted uploads left, stage, check, arm the revert
                   timer, install, remove, reload, confirm (``ApplyOutcome``)
``coordination``   one sync per node at a time: locks naming their holder,
                   with a lease renewed while the sync runs (Redis, or
                   process-local without it)
``outbox``         the syncs nodes are owed (``nodes.PendingSync``), written
                   in the transaction of the change; desired generations
``batch``          one cluster snapshot shared by the syncs of a batch, never
                   older than a node's desired generation (``SharedSnapshot``)
``run``            one node's sync pass and its record (``sync_once``), the
                   drain loop (``run_sync``), several nodes (``sync_many``)
``drift``          compare the files on a node with what it should hold and
                   with what was deployed
``reconcile``      which nodes are owed a sync that no task is coming for
``refresh``        read a node's facts over a transport (no writes)
``queue``          ``request_sync``, ``request_changes`` and the Celery tasks
                   ``sync_node``, ``sync_nodes`` and ``reconcile``: the only
                   place that enqueues syncs
=================  ==========================================================

Imports: ``nodes`` (models, transports, facts), the pure overlay modules
(``filegroups``, ``snapshot``, ``desired``, ``generators``), ``overlays.selectors``
and each other in the order above. Never ``overlays.services``,
``overlays.changes`` or ``overlays.tasks``: a sync records deployments, the node's
sync status and generations and the outbox, and never writes domain data (keys,
rules, node facts).
"""
