"""Labeling beyond one machine: teacher logits as Parquet shards, written by Ray actors.

``shards`` is the on-disk format (pyarrow only, no Ray): the local :class:`LogitsStore` reads
it, so a student trains the same way whatever labeled its data. ``labeling`` runs the
teacher over a corpus with Ray Data; it needs the ``scale`` extra
(``pip install 'textdistill[scale]'``).
"""
