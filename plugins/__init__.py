"""promptsel's bundled plugins, installed as ``promptsel_builtin`` and loaded through the
``promptsel`` entry-point group like any third-party plugin."""
