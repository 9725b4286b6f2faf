"""The build's stages, declared once: the batch runner loops over STAGES and knows nothing of them.

Each `Stage` says what its output depends on, and that is all its cache key holds:
- `config`: the BuildConfig fields it reads;
- `versions(cfg, content_hash)`: model/backend versions and weight hashes (a new backend version or a
  new weights file changes the key);
- `code`: the modules whose source it runs -- their source hash is part of the key, so an annotator fix
  recomputes exactly the stages that run it, and an unrelated edit recomputes nothing;
- `after`: the stages whose output it consumes (their keys chain into its key);
- `inputs(work, ctx)`: content identities beyond the cover (the chosen video's hash, the candidate list).
`produces` names the SongWork fields it sets, `tables` the tables they end up in, and `provenance` what
each key it writes into `songs.provenance` describes (the data card's provenance table is built from it). Adding a stage is one entry here plus its function in stages.py.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from symmv.pipeline import stages as S
from symmv.pipeline.cache import digest
from symmv.pipeline.config import BuildConfig


def _none(*_args) -> dict:
    return {}


@dataclass(frozen=True)
class Stage:
    name: str
    run: Callable[[S.SongWork, BuildConfig, S.BuildContext], dict]
    produces: tuple[str, ...]
    tables: tuple[str, ...] = ()
    config: tuple[str, ...] = ()
    code: tuple[str, ...] = ()
    after: tuple[str, ...] = ()
    versions: Callable[[BuildConfig, Callable], dict] = _none
    inputs: Callable[[S.SongWork, S.BuildContext], dict] = _none
    provenance: tuple[tuple[str, str], ...] = ()  # (songs.provenance key, the fields that producer made)

    def key(self, work: S.SongWork, cfg: BuildConfig, ctx: S.BuildContext, upstream: dict[str, str],
            versions: dict) -> str:
        """The content key of this stage's result for one song (see the module docstring)."""
        from symmv.core.versions import code_version

        return digest({"stage": self.name, "cover": work.cover_sha256,
                       "config": {f: getattr(cfg, f) for f in self.config},
                       "versions": versions, "code": code_version(*self.code) if self.code else "",
                       "after": {s: upstream[s] for s in self.after}, "inputs": self.inputs(work, ctx)})


def _cover_info(work: S.SongWork, ctx: S.BuildContext) -> dict:
    return {"info": json.dumps(work.cover.info, sort_keys=True, default=str), "paired": work.cover.paired_video}


def _candidates(work: S.SongWork, ctx: S.BuildContext) -> dict:
    return {**_cover_info(work, ctx), "candidates": digest(ctx.videos.identity(ctx.content_hash))}


def _qc_classifier_path() -> str:
    from annotators.music_qc import CLASSIFIER_PATH

    return str(CLASSIFIER_PATH)


def _video(work: S.SongWork, ctx: S.BuildContext) -> dict:
    return {"video": work.video.id if work.video else None, "video_sha256": work.video_sha256}


STAGES: list[Stage] = [
    Stage("measure", S.measure_cover, produces=("cover_duration_s",), tables=("songs",),
          config=("max_cover_s", "min_cover_s"), code=("symmv.io.media",), inputs=_cover_info),
    Stage("match", S.parse_and_match, produces=("parsed", "match", "video", "video_sha256"),
          tables=("matches", "songs"), config=("match_threshold", "search_results", "source"),
          code=("symmv.matching.matcher", "symmv.matching.titles"), after=("measure",), inputs=_candidates,
          provenance=(("match", "songs.video_id / video_url / video_title / match_score, `matches`"),)),
    Stage("metadata", S.look_up_metadata, produces=("genre", "metadata"), tables=("metadata", "songs"),
          config=("shazam",), code=("symmv.matching.metadata",), inputs=_cover_info,
          provenance=(("genre", "songs.genre"),)),
    Stage("video", S.extract_video_features, produces=("video_features",), tables=("video_features",),
          config=("semantic_encoder", "video_fps", "semantic_stride"),
          code=("annotators.video", "annotators.quality", "symmv.features.video", "symmv.io.video"),
          after=("measure", "match"), inputs=_video,
          versions=lambda cfg, h: {"encoder": S.encoder_version(cfg)},
          provenance=(("video_features", "`video_features` color / motion / shot_boundaries_s"),
                      ("semantic", "video_features.semantic"),
                      ("video_tempo", "songs.video_tempo_bpm (motion -> 90-130 BPM over the build's motion range)"))),
    Stage("alignment", S.align_to_video, produces=("alignment",), tables=("alignment",),
          config=("align", "min_alignment_confidence"), code=("annotators.alignment",), after=("measure", "match"), inputs=_video,
          provenance=(("alignment", "`alignment`: cover time -> official-video time, confidence"),)),
    Stage("transcribe", S.transcribe_cover, produces=("notes", "transcriber", "cover_duration_s"),
          tables=("notes", "songs"), code=("symmv.transcription.events",),
          versions=lambda cfg, h: S.transcriber_identity(cfg, h),
          provenance=(("notes", "`notes` onset_s / offset_s / pitch / velocity, songs.n_notes, the MIDI files"),)),
    Stage("music_qc", S.check_music, produces=("music_qc",), tables=("music_qc",), config=("qc_min_duration_s",),
          code=("annotators.music_qc",), after=("transcribe",),
          versions=lambda cfg, h: {"classifier": h(_qc_classifier_path())},
          provenance=(("music_qc", "`music_qc`: what the music/audio quality filters measured"),)),
    Stage("rhythm", S.track_rhythm, produces=("beats", "tempo_bpm"), tables=("beats", "songs"),
          config=("beat_tracker",), code=("annotators.beats",), after=("transcribe",),
          versions=lambda cfg, h: {"tracker": S.beat_tracker_version(cfg)},
          provenance=(("beats", "`beats`, songs.tempo_bpm"),)),
    Stage("symbolic", S.annotate_symbolic, produces=("notes", "chords", "key", "key_windows"),
          tables=("notes", "chords", "key_windows", "songs"), code=S.SYMBOLIC_ANNOTATORS,
          after=("transcribe", "rhythm"),
          provenance=(("quantize", "notes.bar / position / duration_16th"), ("skyline", "notes.track (melody / accompaniment)"),
                      ("chords", "`chords`"), ("key", "songs.key_tonic / key_mode / key_confidence, `key_windows`"))),
]

STAGE_NAMES = tuple(s.name for s in STAGES)


def provenance_fields() -> dict[str, str]:
    """songs.provenance key -> the fields its producer made, in stage order (for the data card)."""
    return {key: text for stage in STAGES for key, text in stage.provenance}
