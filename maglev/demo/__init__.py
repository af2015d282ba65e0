"""The bundled demo: ``make demo`` (``python -m maglev.demo``)."""
