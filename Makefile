# symmv: two commands on a fresh machine -- `make demo` and `make test`. Both set up everything first.
SHELL := /bin/bash
PY := .venv/bin/python
export PYTHONWARNINGS := ignore::UserWarning
DEMO_SOURCE ?= data/demo-source
DEMO_OUT ?= data/symmv-demo
SYMMV_RELEASE ?= $(abspath ../shared/data/symmv-release)
RELEASE_OUT ?= data/symmv-release
SONGS ?= 20
PYTEST_ARGS ?=

CKPT ?= checkpoints/tiny
EVAL_OUT ?= reports/demo
EVAL_STEPS ?= 30
CORR_SRC ?= data/correspondence-source
CORR_OUT ?= data/correspondence
CORR_CKPT ?= checkpoints/table2
CORR_REPORT ?= reports/correspondence
# steps per stage kind: the note / one-stream stages 600 (at 150 the decoupled rows' melody and accompaniment
# were near noise, SC ~0.73, and every VMCP comparison between rows measured that), the chord stages 1200
CORR_STEPS ?= 600
CORR_CHORD_STEPS ?= 1200
CORR_JOBS ?= 2
# one torch thread per step: on a busy 2-core machine two threads made a training step ~6x slower (OpenMP waits)
CORR_THREADS ?= 1
EVAL_THREADS ?= 0
SIZE ?= tiny
EPOCHS ?= 8

.PHONY: test-slow setup demo demo-corpus build build-release train-all train-shipped promote generate eval eval-demo correspondence \
  eval-correspondence serve stop test test-all bench clean help

help:
	@echo "make demo   - set up, build the offline demo source, run build-symmv on it ($(DEMO_OUT))"
	@echo "make test   - set up and run the test suite (slow/GPU tests skipped; 'make test-all' runs slow ones)"
	@echo "make bench  - run the benchmarks under bench/ (JSON in bench/results/)"
	@echo "make serve  - local Prefect server + UI (http://127.0.0.1:4200) + worker; registers prefect.yaml deployments"
	@echo "make stop   - stop them"
	@echo "make eval   - Table 2 (every row) on the demo ($(EVAL_OUT)) and the correspondence benchmark ($(CORR_REPORT))"
	@echo "make build-release / train-all / promote / generate VIDEO=.. OUT=.. - SymMV release data, V-MusProd (into"
	@echo "             checkpoints/train-all-cpu), make it the shipped checkpoints, music for a video"

setup:
	@bash scripts/setup.sh

demo-corpus: setup
	$(PY) -m symmv.cli demo-corpus --out $(DEMO_SOURCE) --n-songs $(SONGS)

build: setup
	$(PY) -m symmv.cli build --source-dir $(DEMO_SOURCE) --out $(DEMO_OUT)

# The SymMV release's 999 piano covers through the same pipeline (MIDI read as notes, beats from notes):
# the real music V-MusProd's Melody/Accompaniment stages train on. ~1-2 s per song on 2 cores. The source
# implies its transcriber (midi-file) and beat tracker (notes): symmv.pipeline.sources.
build-release: setup
	$(PY) -m symmv.cli build --source symmv-release --source-dir $(SYMMV_RELEASE) --out $(RELEASE_OUT)

# V-MusProd, stage by stage (Prefect flow train-all), the CPU recipe (size `cpu`, < 60 min on 2 cores):
# all three stages learn the SymMV release's real music (SYMMV_RELEASE; the demo's without it). The
# release has no videos and the demo's video/music pairs are arbitrary, so by default the Chord stage is
# the unconditional one (paper sec. 6.5; the video still sets tempo and length); CHORD_VIDEO=1 trains
# its video pathway on the demo's pairs too (release songs with a null video). Writes a run folder,
# TRAIN_CKPT (default checkpoints/train-all-<size>; re-running resumes it), never the shipped checkpoints:
# `make promote` (symmv promote) copies a finished run into models/checkpoints/cpu.
# TRAIN_SIZE=tiny|cpu|paper|gpu, TRAIN_CKPT, TRAIN_EPOCHS, TRAIN_THREADS override.
train-all: setup
	@if [ -f $(SYMMV_RELEASE)/SymMV.csv ]; then [ -f $(RELEASE_OUT)/build_report.json ] || $(MAKE) build-release; fi
	@[ -f $(RELEASE_OUT)/build_report.json ] && [ -z "$(CHORD_VIDEO)" ] || [ -f $(DEMO_OUT)/build_report.json ] || $(MAKE) demo
	$(PY) -m symmv.cli train --stage all --data $$([ -f $(RELEASE_OUT)/build_report.json ] && echo $(RELEASE_OUT) || echo $(DEMO_OUT)) \
	  $(if $(CHORD_VIDEO),--chord-data $(DEMO_OUT),--unconditional) \
	  --out $(or $(TRAIN_CKPT),checkpoints/train-all-$(or $(TRAIN_SIZE),cpu)) \
	  --size $(or $(TRAIN_SIZE),cpu) $(if $(TRAIN_EPOCHS),--epochs $(TRAIN_EPOCHS)) $(if $(TRAIN_THREADS),--threads $(TRAIN_THREADS))

# The shipped checkpoints' recipe (size cpu-long: ~3x the steps, 35 min wall on 2 cores): chord then melody in one
# process, the accompaniment beside it in a second one, one torch thread each; then the performance models.
# `python -m models.training.train` takes the options of `symmv train` and runs them without Prefect (two Prefect
# runs at once would share one local database).
SHIPPED_RUN ?= checkpoints/train-shipped
train-shipped: setup
	@[ -f $(RELEASE_OUT)/build_report.json ] || $(MAKE) build-release
	( $(PY) -m models.training.train --stage chord --size cpu-long --unconditional --data $(RELEASE_OUT) --out $(SHIPPED_RUN) && \
	  $(PY) -m models.training.train --stage melody --size cpu-long --data $(RELEASE_OUT) --out $(SHIPPED_RUN) ) & pid=$$!; \
	$(PY) -m models.training.train --stage accompaniment --size cpu-long --data $(RELEASE_OUT) --out $(SHIPPED_RUN); acc=$$?; \
	wait $$pid && [ $$acc = 0 ]
	$(PY) -m models.training.train --stage performance --data $(RELEASE_OUT) --out $(SHIPPED_RUN)
	@echo "make promote TRAIN_CKPT=$(SHIPPED_RUN)  # to ship it"

# The explicit step that changes what `symmv generate` uses: a finished run -> models/checkpoints/cpu.
promote: setup
	$(PY) -m symmv.cli promote $(or $(TRAIN_CKPT),checkpoints/train-all-$(or $(TRAIN_SIZE),cpu))

# Background music for a video: make generate VIDEO=clip.mp4 OUT=clip-with-music.mp4
generate: setup
	$(PY) -m symmv.cli generate $(VIDEO) -o $(OUT) --ckpt $(or $(GEN_CKPT),models/checkpoints/cpu)

demo: demo-corpus build
	@$(PY) -m symmv.cli info --root $(DEMO_OUT)

test: setup
	$(PY) -m pytest -q -m "not slow and not gpu and not network" $(PYTEST_ARGS)

# The slower end-to-end checks (deployment on a real server, kill -9 + resume, fault corpus, Dask, train
# and evaluate flows): CI runs them after `make test`.
test-slow: setup
	$(PY) -m pytest -q -m "slow and not heavy and not gpu and not network" $(PYTEST_ARGS)

test-all: setup
	$(PY) -m pytest -q -m "not gpu and not network" $(PYTEST_ARGS)

bench: setup
	@for b in bench/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

# Table 2 as reports (`symmv variants` trains every row, `symmv evaluate` scores them): on the demo (a
# code-path check: 3 test videos, arbitrary video/music pairs) and on the correspondence benchmark (release songs
# with videos rendered from their own music, M = 70; needs the SymMV release at SYMMV_RELEASE).
# Expected time, from the README's own measurements on the 2-core machine (section "Table 2"): eval-demo 71 s
# quiet to 19 min loaded; eval-correspondence the first time: rendering the source ~17 min + its build 1,522 s
# + variants 21 min + VMCP training >30 min + scoring 17 min; later runs reuse the build and the VMCP (~40 min).
EVAL_EXPECTED = about 2 hours on 2 CPU cores the first time (eval-demo 1-19 min; eval-correspondence: source \
  17 min + build 25 min + variants 21 min + VMCP >30 min + scoring 17 min), about 40 min once the benchmark's \
  build and VMCP exist (README, section Table 2)
eval:
	@echo "make eval: expected $(EVAL_EXPECTED)"
	@$(MAKE) --no-print-directory eval-demo eval-correspondence

eval-demo: setup
	@test -d $(DEMO_OUT)/video_features || $(MAKE) demo
	$(PY) -m symmv.cli variants --data $(DEMO_OUT) --out $(CKPT) --size tiny --steps $(EVAL_STEPS)
	$(PY) -m symmv.cli evaluate --data $(DEMO_OUT) --ckpt '' --variants-dir $(CKPT) --out $(EVAL_OUT) \
	  --threads $(EVAL_THREADS) $$(test -f out/eval_release.json && echo --anchor-json out/eval_release.json)

# The benchmark's dataset: render (symmv correspondence-source), then the ordinary build over it (colour and shots
# at 2 fps, the semantic encoder on every 4th frame; 15% of the videos in test, >= 140 for M = 70).
correspondence: setup
	@test -f $(SYMMV_RELEASE)/SymMV.csv || { echo "make correspondence: no SymMV release at SYMMV_RELEASE=$(SYMMV_RELEASE)" >&2; exit 2; }
	@test -f $(CORR_SRC)/SymMV.csv || $(PY) -m symmv.cli correspondence-source --release $(SYMMV_RELEASE) --out $(CORR_SRC)
	@test -f $(CORR_OUT)/_manifest.json || $(PY) -m symmv.cli build --source symmv-release --source-dir $(CORR_SRC) \
	  --out $(CORR_OUT) --video-fps 2 --semantic-stride 4 \
	  --val-fraction 0.1 --test-fraction 0.15

eval-correspondence: correspondence
	$(PY) -m symmv.cli variants --data $(CORR_OUT) --out $(CORR_CKPT) --size cpu --steps $(CORR_STEPS) --chord-steps $(CORR_CHORD_STEPS) \
	  --threads $(CORR_THREADS) --jobs $(CORR_JOBS)
	$(PY) -m symmv.cli evaluate --data $(CORR_OUT) --ckpt '' --variants-dir $(CORR_CKPT) --vmcp benchmark \
	  --vmcp-ckpt $(CORR_REPORT)/vmcp --out $(CORR_REPORT) --threads $(CORR_THREADS)

# Prefect server (SQLite under .prefect/) + process worker in the background; PIDs in .prefect/pids/.
serve: demo-corpus
	@bash scripts/serve.sh

stop:
	@bash scripts/stop.sh

clean: stop
	rm -rf data/symmv-demo .prefect .pytest_cache

# The paper on its real videos, for a GPU machine with internet (README "Reproducing the paper on its real videos").
# 1. symmv fetch-videos: the release's official videos into REPRO_SOURCE/videos/<index>.mp4 (a view of the release:
#    SymMV.csv and midi/ linked, so SYMMV_RELEASE stays as published); resumable, so after a stop (exit 1: YouTube
#    blocking the session) rerun `make reproduce` later; a removed/private/geo-blocked video is a reject row.
# 2. the ordinary release build over it: video features for every entry whose video came (the rest train with a null
#    video, as in train-all). The stage cache makes a rerun after more videos came cheap.
# 3. train-all on it with the video-conditioned Chord stage (CHORD_VIDEO=1) learning from the real pairs, size
#    REPRO_SIZE (gpu: CUDA, the models' SIZES table) -> REPRO_CKPT (for `symmv generate --ckpt`).
# 4. Table 2 on the real pairs: eval-correspondence pointed at that build (every row's folders -> REPRO_VARIANTS,
#    VMCP trained on the train split's real pairs, report -> REPRO_REPORT/README.md).
REPRO_SOURCE ?= data/symmv-release-videos
REPRO_OUT ?= data/symmv-release-real
REPRO_SIZE ?= gpu
REPRO_CKPT ?= checkpoints/train-all-real-$(REPRO_SIZE)
REPRO_VARIANTS ?= checkpoints/table2-real
REPRO_REPORT ?= reports/real
REPRO_JOBS ?= 4
REPRO_FETCH_ARGS ?=
REPRO_BUILD_ARGS ?=
.PHONY: reproduce
reproduce: setup
	@test -f $(SYMMV_RELEASE)/SymMV.csv || { echo "make reproduce: no SymMV release at SYMMV_RELEASE=$(SYMMV_RELEASE)" >&2; exit 2; }
	@echo "make reproduce: estimates, not measured here (no internet): fetch ~3-5 h (999 entries, yt-dlp sleeps 2-8 s" \
	  "and 4 MB/s), build with video features hours (the encoders run on the CPU), train-all size $(REPRO_SIZE)" \
	  "and Table 2 hours more; every step resumes"
	$(PY) -m symmv.cli fetch-videos --source-dir $(SYMMV_RELEASE) --into $(REPRO_SOURCE) $(REPRO_FETCH_ARGS)
	$(PY) -m symmv.cli build --source symmv-release --source-dir $(REPRO_SOURCE) --out $(REPRO_OUT) $(REPRO_BUILD_ARGS)
	$(MAKE) train-all RELEASE_OUT=$(REPRO_OUT) DEMO_OUT=$(REPRO_OUT) CHORD_VIDEO=1 TRAIN_SIZE=$(REPRO_SIZE) \
	  TRAIN_CKPT=$(REPRO_CKPT)
	$(MAKE) eval-correspondence CORR_SRC=$(REPRO_SOURCE) CORR_OUT=$(REPRO_OUT) CORR_CKPT=$(REPRO_VARIANTS) \
	  CORR_REPORT=$(REPRO_REPORT) CORR_JOBS=$(REPRO_JOBS)
