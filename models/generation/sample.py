"""Autoregressive sampling of compound tokens with a KV cache, nucleus sampling and a grammar.

Per token: sample the type, then each attribute that type uses, every draw restricted by `Grammar`:
  - BOS is followed by Bar 0; bars advance one at a time; positions rise within a bar;
  - a Note's pitch is in `pitch_range` (not repeated at the same position) and its duration is 1..64;
  - the melody has at most one note per position (it is the skyline of the piano part);
  - a Chord's quality agrees with its root ("N"/"X" only without a root); chords change only on beats
    (`chord_grid` 16ths; the SymMV chord annotator labels beats, sec. 3.2);
  - accompaniment notes lie below the melody note sounding at their onset (the melody is the skyline),
    at most `max_notes_per_onset` of them;
  - in the last bar, the model's wish for a new bar is its wish to end (`end_of_piece`);
  - the piece has exactly `n_bars` bars (the video length in bars at its tempo): EOS only in the last
    bar, no Bar after it; `max_tokens` forces EOS as a safety net;
  - melody/accompaniment: the chords from the chord stage are copied into the decoder at their
    positions (the Position token before a chord is forced, then the chord itself);
  - the one-stream stages of the ablations: "notes" (Video2chord2music) copies the chords like the melody
    stage and places up to `max_notes_per_onset` + 1 notes per onset (melody and accompaniment together);
    "music" (Video2music, CMT-style) generates chords (on the chord grid) and notes in one stream;
  - optionally a rhythm plan (models/generation/rhythm.py, the CMT-style baseline): onsets on the video's visual
    beats and a number of onsets per bar set by the motion speed;
  - optionally a form (models/generation/form.py): a bar that restates an earlier one gets that bar's onsets and notes
    through the decoder, re-stamped to its own bar (`repeat_of`: note for note; `rhythm_of`: onsets and
    durations, the pitches sampled under the rules above), with its own chords, then closes.
Temperature and top-p may be one number or a dict per attribute ("stochastic temperature-controlled
sampling", paper sec. 4.3 [19]).
"""
from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import torch

from models import tokens as tk
from models.config import SamplingConfig
from models.generation.contour import MINOR_LIKE, chord_scale, melody_top_steps
from models.networks.controller import frame_bars, frame_timing, stride_index
from models.generation.rhythm import RhythmPlan, bar_positions
from models.networks.transformers import CompoundDecoder, Context, new_cache

CHORD_STAGES = ("chord", "music")  # stages that generate chords; the others copy the chord stage's
POLYPHONIC_STAGES = ("accompaniment", "notes", "music")  # several notes may start at one position
ATTRS_OF_TYPE = {t: [a for i, a in enumerate(tk.ATTRIBUTES) if tk.ATTRIBUTES_USED[t, i] and a != "type"]
                 for t in range(len(tk.TYPE_NAMES))}


def per_attribute(value: float | dict, attr: str, default: float, scale: dict | None = None,
                  override: dict | None = None, stage: str | None = None) -> float:
    """A per-attribute setting: the dict's entry, else `override`'s, else the scalar times `scale`'s (default 1);
    in `scale` and `override` a key "<stage>.<attr>" (e.g. "accompaniment.pitch") wins over "<attr>"."""
    if isinstance(value, dict):
        return float(value.get(attr, default))
    keys = [f"{stage}.{attr}", attr] if stage else [attr]
    for key in keys:
        if override and key in override:
            return float(override[key])
    scale = scale or {}
    return float(value) * next((scale[k] for k in keys if k in scale), 1.0)


def sample_logits(logits: torch.Tensor, allowed: np.ndarray, temperature: float, top_p: float,
                  generator: torch.Generator) -> int:
    """Nucleus sampling from (V,) logits restricted to `allowed` (V,) bool; temperature 0 = argmax."""
    logits = logits.float().masked_fill(~torch.as_tensor(allowed), float("-inf"))
    if temperature <= 0:
        return int(logits.argmax())
    probs = torch.softmax(logits / temperature, -1)
    sorted_p, order = probs.sort(descending=True)
    keep = (sorted_p.cumsum(-1) - sorted_p) < top_p  # the top token is always kept
    sorted_p = sorted_p * keep
    choice = torch.multinomial(sorted_p / sorted_p.sum(), 1, generator=generator)
    return int(order[choice])


class Grammar:
    """State of a partial sequence and the masks that keep the next token well-formed."""

    def __init__(self, stage: str, n_bars: int, tempo_bpm: float | None, chords=(), *,
                 pitch_range=(21, 108), max_tokens: int = 20000, chord_grid: int = 1, melody=(),
                 max_notes_per_onset: int = 10, rhythm: RhythmPlan | None = None,
                 repeat_of: dict[int, int] | None = None, rhythm_of: dict[int, int] | None = None,
                 contour=None, contour_weight: float = 0.0, harmony=None, harmony_weight: float = 0.0,
                 key=None, key_weight: float = 0.0):
        self.stage, self.n_bars, self.max_tokens = stage, max(1, n_bars), max_tokens
        self.tempo, self.pitch_range = tk.tempo_bucket(tempo_bpm), tuple(pitch_range)
        self.chord_grid = max(1, chord_grid) if stage in CHORD_STAGES else 1
        # The chord stage's positions are its chord grid; "music" places notes on any 16th.
        self.position_step = self.chord_grid if stage == "chord" else 1
        # "notes" carries the melody note too: one more per onset than the accompaniment alone.
        self.max_notes_per_onset = max_notes_per_onset + (stage == "notes")
        self.rhythm, self.onsets_in_bar = rhythm, 0
        # 16th step -> highest melody pitch sounding there (accompaniment stays below it)
        self.melody_top = melody_top_steps(melody)
        self.chord_at = {(c.bar, c.position): c for c in chords} if stage not in CHORD_STAGES else {}
        self.bar, self.pos, self.last, self.n_tokens = -1, -1, None, 0
        self.pitches_here: set[int] = set()
        self.chord_done: set[tuple[int, int]] = set()
        # form (models/generation/form.py): bar -> earlier bar it restates note for note (`repeat_of`) or in rhythm only
        # (`rhythm_of`: the source's onsets and durations, pitches sampled); the tokens of each bar so far; the
        # restatement still to emit (a NOTE row with pitch 0 = a note whose pitch the model samples)
        self.repeat_of = {b: s for b, s in (repeat_of or {}).items() if 0 <= s < b < self.n_bars}
        self.rhythm_of = {b: s for b, s in (rhythm_of or {}).items()
                          if 0 <= s < b < self.n_bars and b not in self.repeat_of}
        self.bar_tokens: dict[int, list[np.ndarray]] = {}
        self.queue: list[np.ndarray] = []
        self.restating = False
        # melodic contour (models/generation/contour.py), melody stage only: the previous note and the interval into it
        self.contour = contour if stage == "melody" and contour_weight else None
        self.contour_weight = contour_weight
        self.prev_pitch: int | None = None
        self.prev_interval: int | None = None
        # chord-relative harmony correction (models/generation/contour.py HarmonyModel), note stages: the sounding chord
        self.harmony = harmony if harmony_weight and stage not in CHORD_STAGES else None
        self.harmony_weight = harmony_weight
        self.sounding: tk.ChordEvent | None = None
        self.last_onset: int | None = None  # 16th step of the last note onset (the melody's IOI correction)
        # the corrections that hold for the whole piece, weighted once: in / out of the key the progression implies
        # (known before the notes), the register
        self.piece_pitch_priors = []
        if self.harmony is not None:
            scale = chord_scale([(c.root, c.quality) for c in self.chord_at.values()])
            for prior in (self.harmony.scale_prior(scale, tk.VOCAB["pitch"]), self.harmony.register_prior(tk.VOCAB["pitch"])):
                self.piece_pitch_priors.append(None if prior is None else harmony_weight * prior)
        # key correction of chord roots (models/generation/contour.py KeyModel), chord stage: the piece's first chord
        self.key = key if key_weight and stage == "chord" else None
        self.key_weight = key_weight
        self.first_chord: tuple[int, bool] | None = None

    def type_prior(self) -> np.ndarray | None:
        """(6,) log-odds correction of the token type: "one more note at this onset" (accompaniment), or None."""
        odds = getattr(self.harmony, "onset_log_odds", None) if self.harmony is not None else None
        if odds is None or self.last is None or self.last[0] != tk.NOTE:
            return None
        out = np.zeros(len(tk.TYPE_NAMES))
        out[tk.NOTE] = self.harmony_weight * odds[min(len(self.pitches_here), len(odds) - 1)]
        return out

    def barbeat_prior(self) -> np.ndarray | None:
        """(VOCAB["barbeat"],) weighted log correction of the next onset position by its distance from the last
        onset (calibrated melody stage), or None."""
        ratio = getattr(self.harmony, "ioi_log_ratio", None) if self.harmony is not None else None
        if ratio is None or self.last_onset is None:
            return None
        out = np.zeros(tk.VOCAB["barbeat"])
        here = max(self.bar, 0) * tk.STEPS_PER_BAR
        for p in range(tk.STEPS_PER_BAR):
            ioi = here + p - self.last_onset
            if ioi > 0:
                out[2 + p] = self.harmony_weight * ratio[min(ioi, len(ratio) - 1)]
        # a new bar puts the next onset at least this far away: it takes the correction of that shortest IOI
        gap = here + tk.STEPS_PER_BAR - self.last_onset
        out[tk.BAR] = self.harmony_weight * ratio[min(max(gap, 1), len(ratio) - 1)]
        return out

    def duration_prior(self) -> np.ndarray | None:
        """(VOCAB["duration"],) weighted log correction of note durations (calibrated note stages), or None."""
        ratio = getattr(self.harmony, "duration_log_ratio", None) if self.harmony is not None else None
        return None if ratio is None else self.harmony_weight * np.asarray(ratio)

    def root_prior(self) -> np.ndarray | None:
        """(VOCAB["root"],) weighted log correction of the chord-root logits, or None."""
        if self.key is None or self.first_chord is None:
            return None
        return self.key_weight * self.key.root_log_prior(*self.first_chord, tk.VOCAB["root"])

    def pitch_prior(self) -> np.ndarray | None:
        """(VOCAB["pitch"],) log-prior added to the pitch logits (the sum of the weighted corrections), or None."""
        vocab, terms = tk.VOCAB["pitch"], []
        if self.contour is not None:
            c = self.contour.pitch_log_prior(self.prev_pitch, self.prev_interval, vocab)
            terms.append(None if c is None else self.contour_weight * c)
        if self.harmony is not None:
            if self.sounding is not None:
                terms.append(self.harmony_weight * self.harmony.pitch_log_prior(self.sounding, vocab))
            scale, register = self.piece_pitch_priors
            below = self.harmony.below_prior(self.melody_top.get(self.bar * tk.STEPS_PER_BAR + self.pos), vocab)
            terms += [scale, None if below is None else self.harmony_weight * below, register]
        terms = [t for t in terms if t is not None]
        return sum(terms[1:], terms[0]) if terms else None

    def attribute_prior(self, attr: str) -> np.ndarray | None:
        """The weighted log correction added to `attr`'s logits before sampling, or None."""
        prior = {"pitch": self.pitch_prior, "root": self.root_prior, "duration": self.duration_prior,
                 "barbeat": self.barbeat_prior}.get(attr)
        return prior() if prior is not None else None

    def sealed(self) -> bool:
        """This bar restated an earlier one and the restatement is complete: nothing more may start in it."""
        return self.restating and not self.queue

    def restatement(self, bar: int) -> list[np.ndarray]:
        """The tokens of `bar` restating its source: the source's onsets and notes (pitch 0 = to sample for a
        rhythm-only restatement), re-stamped to `bar`; the chords are the source's in the chord stages and
        `bar`'s own (copied from the chord stage) in the others. Empty if the source bar has no events."""
        exact = bar in self.repeat_of
        source = self.repeat_of.get(bar, self.rhythm_of.get(bar))
        notes, chords, pos = {}, {}, -1
        for t in self.bar_tokens.get(source, []):
            if t[0] == tk.RHYTHM:
                pos = int(t[1]) - 2
            elif t[0] == tk.NOTE:
                notes.setdefault(pos, []).append(t)
            elif t[0] == tk.CHORD and self.stage in CHORD_STAGES:
                chords[pos] = t
        if self.stage not in CHORD_STAGES:
            chords = {p: tk.chord_token(c, self.n_bars, self.tempo) for (b, p), c in self.chord_at.items() if b == bar}
        if not notes and not chords:
            return []
        out = []
        for p in sorted(set(notes) | set(chords)):
            out.append(tk.make_token(tk.RHYTHM, bar, self.n_bars, self.tempo, barbeat=2 + p, beat=1 + p))
            if p in chords:
                c = chords[p]
                out.append(tk.make_token(tk.CHORD, bar, self.n_bars, self.tempo, root=int(c[tk.F["root"]]),
                                         quality=int(c[tk.F["quality"]]), beat=1 + p))
            for t in notes.get(p, []):
                out.append(tk.make_token(tk.NOTE, bar, self.n_bars, self.tempo, beat=1 + p,
                                         pitch=int(t[tk.F["pitch"]]) if exact else 0,
                                         duration=int(t[tk.F["duration"]])))
        return out

    def fixed_values(self) -> dict[str, int]:
        """Attributes the restatement fixes for the next sampled token (a rhythm-only note: type, duration)."""
        if self.queue and self.queue[0][0] == tk.NOTE and self.queue[0][tk.F["pitch"]] == 0:
            return {"type": tk.NOTE, "duration": int(self.queue[0][tk.F["duration"]])}
        return {}

    def token(self, type_: int, **values) -> np.ndarray:
        bb = values.get("barbeat", 0)
        bar = self.bar + 1 if (type_ == tk.RHYTHM and bb == tk.BAR) else max(self.bar, 0)
        beat = bb - 1 if (type_ == tk.RHYTHM and bb != tk.BAR) else (self.pos + 1 if type_ in (tk.NOTE, tk.CHORD) else 0)
        return tk.make_token(type_, bar, self.n_bars, self.tempo, beat=beat, **values)

    def bos(self) -> np.ndarray:
        return tk.make_token(tk.BOS, 0, self.n_bars, self.tempo)

    def pending_chord(self) -> int | None:
        """Position of the next chord of this bar not yet copied into the sequence."""
        later = [p for (b, p) in self.chord_at if b == self.bar and p > self.pos]
        return min(later) if later else None

    def forced(self) -> np.ndarray | None:
        if self.last is None or self.last[0] == tk.BOS:
            return self.token(tk.RHYTHM, barbeat=tk.BAR)
        if self.n_tokens >= self.max_tokens:
            return self.token(tk.EOS)
        if self.queue and not self.fixed_values():
            return self.queue[0]
        key = (self.bar, self.pos)
        if self.last[0] == tk.RHYTHM and self.last[1] != tk.BAR and key in self.chord_at and key not in self.chord_done:
            c = tk.chord_token(self.chord_at[key], self.n_bars, self.tempo)
            return self.token(tk.CHORD, root=int(c[tk.F["root"]]), quality=int(c[tk.F["quality"]]))
        return None

    def allowed_types(self) -> np.ndarray:
        ok = np.zeros(len(tk.TYPE_NAMES), dtype=bool)
        after_position = self.last[0] == tk.RHYTHM and self.last[1] != tk.BAR
        if after_position:
            ok[tk.CHORD] = self.stage == "chord" or (self.stage == "music" and self.pos % self.chord_grid == 0)
            ok[tk.NOTE] = self.stage != "chord"
            return ok
        if self.rhythm is not None and self.last[0] == tk.CHORD:  # a planned onset is a note onset
            ok[tk.NOTE] = True
            return ok
        positions, may_end_bar = self.next_positions()
        ok[tk.RHYTHM] = positions.any() or (may_end_bar and not self.in_last_bar())
        ok[tk.EOS] = self.in_last_bar() and may_end_bar
        ok[tk.NOTE] = not self.sealed() and (self.stage in POLYPHONIC_STAGES and self.last[0] in (tk.NOTE, tk.CHORD)
                       and len(self.pitches_here) < self.max_notes_per_onset) or (
            self.stage == "melody" and self.last[0] == tk.CHORD)  # the melody is a skyline: one note per position
        if not ok.any():  # cannot happen for a consistent rhythm plan; never leave the sampler without a move
            ok[tk.EOS if self.in_last_bar() else tk.RHYTHM] = True
        return ok

    def next_positions(self) -> tuple[np.ndarray, bool]:
        """(16,) bool: positions the next Position token may take in this bar; whether the bar may end."""
        if self.rhythm is not None and self.bar >= 0:
            return bar_positions(self.rhythm, self.bar, self.pos, self.onsets_in_bar)
        positions = np.zeros(tk.STEPS_PER_BAR, dtype=bool)
        if self.sealed():
            return positions, True
        first = self.pos + 1 + (-(self.pos + 1)) % self.position_step  # next position on the grid
        positions[first:: self.position_step] = True
        return positions, True

    def in_last_bar(self) -> bool:
        return self.bar >= self.n_bars - 1

    def allowed(self, attr: str, values: dict) -> np.ndarray:
        ok = np.zeros(tk.VOCAB[attr], dtype=bool)
        if attr == "barbeat":
            positions, may_end_bar = self.next_positions()
            ok[tk.BAR] = self.bar < self.n_bars - 1 and may_end_bar
            ok[2:] = positions
            if not ok.any():  # see allowed_types
                ok[tk.BAR] = True
        elif attr == "pitch":
            lo, hi = self.pitch_range
            top = self.melody_top.get(self.bar * tk.STEPS_PER_BAR + self.pos)
            if top is not None and top - 1 >= lo:
                hi = min(hi, top - 1)
            ok[1 + lo: 2 + hi] = True
            ok[[1 + p for p in self.pitches_here]] = False
            if not ok.any():
                ok[1 + lo: 2 + hi] = True
        elif attr == "duration":
            ok[1:] = True
        elif attr == "root":
            ok[1:] = True
        elif attr == "quality":
            no_chord = [1 + tk.QUALITIES.index(q) for q in tk.NO_CHORD_QUALITIES]
            ok[no_chord] = values.get("root") == tk.NO_ROOT
            ok[1:no_chord[0]] = values.get("root") != tk.NO_ROOT
        return ok

    def fix(self, token: np.ndarray) -> np.ndarray:
        """Melody/accompaniment: never step over a chord of this bar; go to its position instead."""
        pending = self.pending_chord()
        if pending is None or token[0] not in (tk.RHYTHM, tk.EOS):
            return token
        if token[0] == tk.EOS or token[1] == tk.BAR or token[1] - 2 > pending:
            return self.token(tk.RHYTHM, barbeat=2 + pending)
        return token

    def advance(self, token: np.ndarray) -> None:
        type_, bb = int(token[0]), int(token[1])
        if self.queue:
            self.queue.pop(0)
        if type_ == tk.RHYTHM and bb == tk.BAR:
            nxt = self.bar + 1
            self.queue = self.restatement(nxt) if nxt in self.repeat_of or nxt in self.rhythm_of else []
            self.restating = bool(self.queue)
        if type_ in (tk.RHYTHM, tk.NOTE, tk.CHORD) and not (type_ == tk.RHYTHM and bb == tk.BAR):
            self.bar_tokens.setdefault(self.bar, []).append(token)
        if type_ == tk.RHYTHM:
            self.bar, self.pos = (self.bar + 1, -1) if bb == tk.BAR else (self.bar, bb - 2)
            self.onsets_in_bar = 0 if bb == tk.BAR else self.onsets_in_bar + 1
            self.pitches_here = set()
        elif type_ == tk.NOTE:
            self.last_onset = max(self.bar, 0) * tk.STEPS_PER_BAR + self.pos
            pitch = int(token[tk.F["pitch"]]) - 1
            self.pitches_here.add(pitch)
            if self.prev_pitch is not None:
                self.prev_interval = pitch - self.prev_pitch
            self.prev_pitch = pitch
        elif type_ == tk.CHORD:
            self.chord_done.add((self.bar, self.pos))
            self.sounding = self.chord_at.get((self.bar, self.pos))
            root, quality = int(token[tk.F["root"]]), int(token[tk.F["quality"]])
            if self.first_chord is None and 1 <= root <= 12 and quality:
                self.first_chord = (root - 1, tk.QUALITIES[quality - 1] in MINOR_LIKE)
        self.last, self.n_tokens = token, self.n_tokens + 1


@contextmanager
def cpu_threads(n: int, device: torch.device):
    before = torch.get_num_threads()
    if n and device.type == "cpu":
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def sample_sequence(model: CompoundDecoder, ctx: Context, grammar: Grammar, cfg: SamplingConfig,
                    seed: int = 0) -> np.ndarray:
    """Generate one sequence (BOS .. EOS) -> (T, len(FIELDS)) int64, one token per decoder step."""
    device = next(model.parameters()).device
    with cpu_threads(cfg.cpu_threads, device), torch.no_grad():
        return _sample(model, ctx, grammar, cfg, seed, device)


def _sample(model, ctx, grammar, cfg, seed, device) -> np.ndarray:
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    cache = new_cache(len(model.blocks))
    seq = [grammar.bos()]
    grammar.advance(seq[0])
    while seq[-1][0] != tk.EOS:
        x = torch.as_tensor(seq[-1], device=device)[None, None]  # (1,1,F)
        h = model.decode(x, ctx, cache, start_pos=len(seq) - 1)[:, -1]  # (1,D)
        token = grammar.forced()
        if token is None:
            fixed = grammar.fixed_values()  # a rhythm-only restatement fixes all but the pitch
            if "type" in fixed:
                type_ = fixed["type"]
            else:
                type_logits = model.heads.type_head(h)[0].cpu()
                if grammar.in_last_bar():
                    type_logits = end_of_piece(model, h, type_logits, device)
                type_prior = grammar.type_prior()
                if type_prior is not None:
                    type_logits = type_logits.float() + torch.as_tensor(type_prior, dtype=torch.float32)
                type_ = sample_logits(type_logits, grammar.allowed_types(),
                                      per_attribute(cfg.temperature, "type", 1.0, cfg.temperature_scale,
                                                    stage=grammar.stage),
                                      per_attribute(cfg.top_p, "type", 0.9, override=cfg.top_p_override,
                                                    stage=grammar.stage), generator)
            logits = model.heads.attribute_logits(h, torch.tensor([type_], device=device))
            values: dict[str, int] = {}
            for attr in ATTRS_OF_TYPE[type_]:
                if attr in fixed:
                    values[attr] = fixed[attr]
                    continue
                attr_logits = logits[attr][0].cpu().float()
                prior = grammar.attribute_prior(attr)
                if prior is not None:  # the data-vs-model corrections (models/generation/contour.py)
                    attr_logits = attr_logits + torch.as_tensor(prior, dtype=torch.float32)
                values[attr] = sample_logits(attr_logits, grammar.allowed(attr, values),
                                             per_attribute(cfg.temperature, attr, 1.0, cfg.temperature_scale,
                                                           stage=grammar.stage),
                                             per_attribute(cfg.top_p, attr, 0.9, override=cfg.top_p_override,
                                                           stage=grammar.stage),
                                             generator)
            token = grammar.fix(grammar.token(type_, **values))
        grammar.advance(token)
        seq.append(token)
    return np.stack(seq)


def end_of_piece(model: CompoundDecoder, h: torch.Tensor, type_logits: torch.Tensor, device) -> torch.Tensor:
    """In the last bar, "a new bar" means "the end": move the mass of RHYTHM-with-barbeat-Bar onto EOS.

    Training windows mostly stop mid-song, so the model rarely saw EOS and, at the end of the last bar,
    would rather start a bar the grammar forbids; renormalising over what is left made it pile notes
    onto the last position until max_tokens. log P'(EOS) = log(P(EOS) + P(RHYTHM) P(Bar | RHYTHM)).
    """
    bar_given_rhythm = torch.log_softmax(
        model.heads.attribute_logits(h, torch.tensor([tk.RHYTHM], device=device))["barbeat"][0].float().cpu(), -1)[tk.BAR]
    logp = torch.log_softmax(type_logits.float(), -1)
    out = logp.clone()
    out[tk.EOS] = torch.logaddexp(logp[tk.EOS], logp[tk.RHYTHM] + bar_given_rhythm)
    out[tk.RHYTHM] = logp[tk.RHYTHM] + torch.log1p(-bar_given_rhythm.exp().clamp(max=1 - 1e-6))
    return out


def video_context(model: CompoundDecoder, semantic: np.ndarray | None, color: np.ndarray | None,
                  n_bars: int | None = None) -> Context:
    """Chord stage context from whole-video features (T, D) arrays; empty for the unconditional model.
    `n_bars`: the piece's bars, laid evenly over the video (each frame's bar, for the controller's bar
    mask); None leaves the mask off."""
    if getattr(model, "controller", None) is None:
        return Context()
    device = next(model.parameters()).device
    batch = {}
    for name, arr in (("semantic", np.asarray(semantic, dtype=np.float32)), ("color", np.asarray(color, dtype=np.float32))):
        index = stride_index(len(arr), model.cfg.controller.max_frames)
        batch[name] = torch.as_tensor(arr[index], device=device)[None]  # (1,T,D)
        batch[f"{name}_valid"] = torch.ones(1, len(index), dtype=torch.bool, device=device)
        batch[f"{name}_timing"] = torch.as_tensor(frame_timing(index, len(arr)), device=device)[None]
        if n_bars:
            batch[f"{name}_bars"] = torch.as_tensor(frame_bars(index, len(arr), n_bars), device=device)[None]
    with torch.no_grad():
        return model.context(batch)


def condition_context(model: CompoundDecoder, cond_tokens: np.ndarray) -> Context:
    device = next(model.parameters()).device
    return model.context({"cond_tokens": torch.as_tensor(cond_tokens, device=device)[None]})
