"""napari dock widgets (Qt): thin views over the Qt-free core.

``TrackerWidget`` (``tracker_widget``) and ``ResultsWidget`` (``results_widget``) are
declared in ``napari.yaml``; everything slow runs in napari thread workers.
"""
