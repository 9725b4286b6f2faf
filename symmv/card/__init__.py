"""The dataset card of a built SymMV dataset: reading (the build), sections (the text), plots (Fig. 3), writer.

The names of the files a card writes are defined here, where the build flow and the annotator evaluation find
them without loading pandas or matplotlib.
"""
PLOT_FILES = {
    "bpm": "bpm_density_per_genre.png",
    "tsne": "tsne_semantic_by_genre.png",
    "chords": "chord_distribution_per_genre.png",
}
# in a dataset root: `python -m symmv.evaluation.annotators --tables ROOT` measured that build's own tables
BUILD_ACCURACY_JSON = "annotator_accuracy.json"
