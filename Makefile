# sourcebook: `make run` to try it, `make test` to check it. Both set everything up first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
INDEX ?= .sourcebook
PORT ?= 7860

.PHONY: install browser ocr run test test-unit test-integration screenshots bench eval clean train-reader train-second-reader \
	tune-embedder

install: $(STAMP)

# torch goes in first and pinned: pip then takes the CPU build, and nothing later
# pulls the multi-GB CUDA one.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test,ray]'
	touch $(STAMP)

run: install
	$(BIN)/sourcebook ingest corpus --index $(INDEX)
	$(BIN)/sourcebook serve --index $(INDEX) --corpus corpus --port $(PORT) --watch

# Browser tests drive Debian's Chromium (Playwright's own browser download does not work here).
browser:
	@command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)

# OCR of scanned PDF pages: Debian's Tesseract, found on PATH when present (without it, ingest
# still works and each scanned page is flagged with how to get it).
ocr:
	@command -v tesseract >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tesseract-ocr)

test: install browser ocr
	$(BIN)/pytest

# The fast tier (a fake model, tiny corpora; under a minute); the rest: the real model, the browser, the slow tests.
test-unit: install
	$(BIN)/pytest -m fast

test-integration: install browser ocr
	$(BIN)/pytest -m "not fast"

# The README's screenshots (docs/screenshot-*.png), made by the page tests; a plain test run writes them to a temporary folder.
screenshots: install browser
	SCREENSHOTS_DIR=$(CURDIR)/docs $(BIN)/pytest tests/test_web.py -k "screenshot or quotes_the_documents"

# Speed, memory and scale figures (not part of `make test`); writes bench/results/.
# `make bench QUICK=1` ingests 1,000 SciFact abstracts instead of all 5,183 for the ingest comparison.
bench: install
	$(BIN)/pip install --quiet -c constraints.txt -e '.[bench]'
	$(BIN)/python -m bench $(if $(QUICK),--quick,)

eval: install
	$(BIN)/sourcebook ingest corpus --index $(INDEX)
	$(BIN)/sourcebook eval corpus/qa.jsonl --index $(INDEX)

clean:
	rm -rf $(VENV) $(INDEX)

# The reader (models/reader/): trained from the bundled MiniLM weights and SQuAD, not part of
# `make run` or `make test`. Four stages, about two and a half hours on two cores; a stopped stage
# resumes from its checkpoint in $(READER_WORK). Each starts from the one before: the second leans
# on near misses (every v1.1 question also made into one; three negatives per unanswerable
# question), the third rewords questions into near misses, the fourth ranks each near miss below
# the answer it was made from and reads real unanswerable questions against the nearest answer.
SQUAD ?= ../shared/datasets/squad
READER_WORK ?= .reader-training
train-reader: install
	$(BIN)/python -m training.train_reader --data $(SQUAD) --work $(READER_WORK)/stage1 --out $(READER_WORK)/stage1-model
	$(BIN)/python -m training.train_reader --data $(SQUAD) --work $(READER_WORK)/stage2 --out $(READER_WORK)/stage2-model \
		--init-from $(READER_WORK)/stage1/checkpoint.pt --seed 14 --v1-questions 3000 --near-miss-share 1.0 \
		--unanswerable-negatives 3 --lr 2e-5 --epochs 0.75
	$(BIN)/python -m training.train_reader --data $(SQUAD) --work $(READER_WORK)/stage3 --out $(READER_WORK)/stage3-model \
		--init-from $(READER_WORK)/stage2/checkpoint.pt --seed 15 --v1-questions 4000 --near-miss-share 0.5 \
		--reworded-share 1.0 --unanswerable-negatives 3 --lr 1.5e-5 --epochs 0.7
	$(BIN)/python -m training.train_reader --data $(SQUAD) --work $(READER_WORK)/stage4 --out models/reader \
		--init-from $(READER_WORK)/stage3/checkpoint.pt --seed 16 --v1-questions 4000 --near-miss-share 0.5 \
		--reworded-share 1.0 --unanswerable-negatives 3 --lr 1.5e-5 --epochs 0.7 --pair-weight 1.0 --paired-unanswerable
	$(BIN)/python -m training.quantise models/reader
	$(MAKE) train-second-reader

# The second reader (models/second-reader/), which re-reads the first one's best sentences:
# all-mpnet-base-v2 (fetched from the package index and checked by training.teacher_base), one
# stage of twelve layers (about 90 minutes here), then cut to its first ten and trained on (about
# 40), so that its export, with the word-piece table in 4 bits, stays under 90 MB; then four
# stages more with every v1.1 question also made into a near miss and the ranking loss weighing
# twice (the later flags win), the first starting from stage 2's int8 file: two of 700 steps
# (about 30 minutes each), then two long ones of 2,400 and 2,000 steps (about 85 and 70). Stage 7
# (about 2 hours 45 minutes): near misses that keep the question's words (--role-share), each step
# trained reading the weights as int8 stores them: two steps from stage 6, the mean of stage 6 and
# the second, and one more step from that mean. Stage 8 (about 35 minutes): one such step from
# stage 7 with a quarter of the v1.1 questions also asked joined with another (--joined-share)
# (models/second-reader/README.md).
MPNET ?= $(READER_WORK)/all-mpnet-base-v2
SECOND_RECIPE = --data $(SQUAD) --base $(MPNET) --v2-share 1.0 --unanswerable-negatives 3 --reworded-share 0.5 \
	--pair-weight 1.0 --paired-unanswerable 1 --epochs 10 --dev-questions 0
SECOND_NEAR_MISSES = --near-miss-share 1.0 --pair-weight 2.0 --layers 10 --lr 1.5e-5 --max-steps 700
SECOND_ROLES = --near-miss-share 1.0 --pair-weight 2.0 --layers 10 --lr 1.5e-5 --int8-aware --v1-questions 14000
train-second-reader: install
	$(BIN)/python -m training.teacher_base --dest $(MPNET)
	$(BIN)/python -m training.train_reader $(SECOND_RECIPE) --work $(READER_WORK)/second1 \
		--out $(READER_WORK)/second1-model --layers 12 --seed 13 --max-steps 1500
	$(BIN)/python -m training.train_reader $(SECOND_RECIPE) --work $(READER_WORK)/second2 --out models/second-reader \
		--init-from $(READER_WORK)/second1/checkpoint.pt --layers 10 --seed 25 --lr 2e-5 --max-steps 700
	$(BIN)/python -m training.quantise models/second-reader --table-bits 4
	$(BIN)/python -m training.train_reader $(SECOND_RECIPE) $(SECOND_NEAR_MISSES) --work $(READER_WORK)/second3 \
		--out $(READER_WORK)/second3-model --init-from models/second-reader/model.onnx --seed 29
	$(BIN)/python -m training.train_reader $(SECOND_RECIPE) $(SECOND_NEAR_MISSES) --work $(READER_WORK)/second4 \
		--out $(READER_WORK)/second4-model --init-from $(READER_WORK)/second3/checkpoint.pt --seed 30
	$(BIN)/python -m training.train_reader $(SECOND_RECIPE) $(SECOND_NEAR_MISSES) --work $(READER_WORK)/second-stage5 \
		--out $(READER_WORK)/second-stage5-model --init-from $(READER_WORK)/second4/checkpoint.pt --seed 36 \
		--max-steps 2400
	$(BIN)/python -m training.train_reader $(SECOND_RECIPE) $(SECOND_NEAR_MISSES) --work $(READER_WORK)/second-stage6 \
		--out models/second-reader --init-from $(READER_WORK)/second-stage5/checkpoint.pt --seed 37 \
		--lr 1.2e-5 --max-steps 2000
	$(BIN)/python -m training.quantise models/second-reader --table-bits 4
	$(BIN)/python -m training.train_reader $(SECOND_RECIPE) $(SECOND_ROLES) --role-share 1.0 --max-steps 800 --seed 42 \
		--init-from models/second-reader/model.onnx --work $(READER_WORK)/second-s38r --out $(READER_WORK)/second-s38r-model
	rm -rf $(READER_WORK)/second-s38r-int8 && cp -r $(READER_WORK)/second-s38r-model $(READER_WORK)/second-s38r-int8
	$(BIN)/python -m training.quantise $(READER_WORK)/second-s38r-int8 --table-bits 4
	$(BIN)/python -m training.train_reader $(SECOND_RECIPE) $(SECOND_ROLES) --role-share 1.0 --max-steps 800 --seed 44 \
		--init-from $(READER_WORK)/second-s38r-int8/model.onnx --work $(READER_WORK)/second-s38s \
		--out $(READER_WORK)/second-s38s-model
	$(BIN)/python -m training.average --base $(MPNET) --layers 10 --out $(READER_WORK)/second-soup-a \
		models/second-reader/model.onnx $(READER_WORK)/second-s38s-model/model.onnx
	rm -rf $(READER_WORK)/second-soup-a-int8 && cp -r $(READER_WORK)/second-soup-a $(READER_WORK)/second-soup-a-int8
	$(BIN)/python -m training.quantise $(READER_WORK)/second-soup-a-int8 --table-bits 4
	$(BIN)/python -m training.train_reader $(SECOND_RECIPE) $(SECOND_ROLES) --role-share 0.5 --max-steps 600 --seed 46 \
		--checkpoint-every 100 --init-from $(READER_WORK)/second-soup-a-int8/model.onnx \
		--work $(READER_WORK)/second-s39b --out models/second-reader
	$(BIN)/python -m training.quantise models/second-reader --table-bits 4
	$(BIN)/python -m training.train_reader $(SECOND_RECIPE) $(SECOND_ROLES) --role-share 0.5 --joined-share 0.25 \
		--max-steps 600 --seed 47 --checkpoint-every 100 --init-from models/second-reader/model.onnx \
		--work $(READER_WORK)/second-s40a --out models/second-reader
	$(BIN)/python -m training.quantise models/second-reader --table-bits 4

# The embedder (models/embedder/): the bundled all-MiniLM-L6-v2 tuned on SQuAD v1.1 questions, about
# eleven minutes on two cores; not part of `make run` or `make test`. A library another model
# embedded is embedded again by the next `sourcebook ingest` (a server refuses it until then).
tune-embedder: install
	$(BIN)/python -m training.tune_embedder --data $(SQUAD) --out models/embedder
