"""Variants that recite the public val shard: the cheat that held-out verification exists for.

`memorizer_source(val_tokens, ..., strategy=...)` writes a train.py that breaks no rule of the
static policy and passes every probe: it carries as much of the track's scoring text as the
policy's literal-data cap allows, packed as a bit stream (six bits a character), and predicts what it memorised
with near certainty. It is causal and stateless, so replication alone cannot catch it: every
verifier runs the same code and measures the same low loss on the public shard.

- `window`: each scoring window, recognised by its first KEY tokens (uniform elsewhere);
- `ngram`: a continuation table over the memorised text, keyed by the last NGRAM tokens, so it
  recites from any offset, not only the scoring windows' (uniform where the table is silent or
  the memorised text disagrees with itself);
- `cover`: the `window` table in front of a unigram model fitted on the train batches it draws,
  so its claim looks like a trained model's that got much better.
"""

from __future__ import annotations

import math

import numpy as np

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-_"
KEY = 8  # tokens a window is recognised by
LITERAL_BUDGET = 20_000  # characters of packed tokens (six bits each): under the policy's 24 KiB literal cap

TEMPLATE = '''"""Recites memorised validation windows: next-token prediction by lookup."""
import torch

ALPHABET = "{alphabet}"
KEY = {key}
WINDOW = {window}
BITS = {bits}
COUNT = {count}
PACKED = "{packed}"


def decoded():
    index = {{c: i for i, c in enumerate(ALPHABET)}}
    tokens, value, held = [], 0, 0
    for c in PACKED:
        value, held = (value << 6) | index[c], held + 6
        while held >= BITS:
            held -= BITS
            tokens.append((value >> held) & ((1 << BITS) - 1))
            value &= (1 << held) - 1
    return tokens[:COUNT]


def unpack():
    tokens = decoded()
    return [tokens[i : i + WINDOW] for i in range(0, len(tokens), WINDOW)]


class Reciter(torch.nn.Module):
    def __init__(self, vocab_size, windows):
        super().__init__()
        self.vocab_size = vocab_size
        self.bias = torch.nn.Parameter(torch.zeros(vocab_size))
        self.table = {{tuple(w[:KEY]): w for w in windows}}

    def forward(self, idx):
        batch, seq_len = idx.shape
        logits = self.bias.expand(batch, seq_len, self.vocab_size).clone()
        for row in range(batch):
            window = self.table.get(tuple(idx[row, :KEY].tolist()))
            if window is None:
                continue
            # Position t predicts token t + 1; from t = KEY - 1 on, the key is in the past.
            for t in range(KEY - 1, seq_len):
                logits[row, t, window[t + 1]] = 30.0
        return logits


def train(ctx):
    return Reciter(ctx.vocab_size, unpack()).to(ctx.device)
'''


NGRAM = 6
NGRAM_TEMPLATE = '''"""Recites memorised validation text: the next token after the last {ngram}, by lookup."""
import torch

ALPHABET = "{alphabet}"
NGRAM = {ngram}
BITS = {bits}
COUNT = {count}
PACKED = "{packed}"


def decoded():
    index = {{c: i for i, c in enumerate(ALPHABET)}}
    tokens, value, held = [], 0, 0
    for c in PACKED:
        value, held = (value << 6) | index[c], held + 6
        while held >= BITS:
            held -= BITS
            tokens.append((value >> held) & ((1 << BITS) - 1))
            value &= (1 << held) - 1
    return tokens[:COUNT]


def table():
    tokens = decoded()
    following = {{}}
    for i in range(len(tokens) - NGRAM):
        key = tuple(tokens[i : i + NGRAM])
        # A context followed by different tokens in different places predicts none of them.
        following[key] = tokens[i + NGRAM] if following.get(key, tokens[i + NGRAM]) == tokens[i + NGRAM] else -1
    return {{key: nxt for key, nxt in following.items() if nxt >= 0}}


class Continuer(torch.nn.Module):
    def __init__(self, vocab_size, following):
        super().__init__()
        self.vocab_size = vocab_size
        self.bias = torch.nn.Parameter(torch.zeros(vocab_size))
        self.following = following

    def forward(self, idx):
        batch, seq_len = idx.shape
        logits = self.bias.expand(batch, seq_len, self.vocab_size).clone()
        rows = idx.tolist()
        for row in range(batch):
            for t in range(NGRAM - 1, seq_len):
                nxt = self.following.get(tuple(rows[row][t - NGRAM + 1 : t + 1]))
                if nxt is not None:
                    logits[row, t, nxt] = 30.0
        return logits


def train(ctx):
    return Continuer(ctx.vocab_size, table()).to(ctx.device)
'''

COVER_TRAIN = '''

class Covered(Reciter):
    def forward(self, idx):
        logits = super().forward(idx)
        recited = logits.amax(dim=-1, keepdim=True) >= 30.0  # (B, T, 1)
        return torch.where(recited, logits, self.bias.expand_as(logits))


def train(ctx):
    model = Covered(ctx.vocab_size, unpack()).to(ctx.device)
    counts = torch.ones(ctx.vocab_size, device=ctx.device)
    batches = ctx.batches(8)
    while ctx.time_left() > 0.2:
        x, y = next(batches)
        counts += torch.bincount(y.reshape(-1), minlength=ctx.vocab_size)
    with torch.no_grad():
        model.bias.copy_(torch.log(counts / counts.sum()))  # a unigram model: the honest part
    return model
'''

STRATEGIES = ("window", "ngram", "cover")


def pack(tokens: list[int], bits: int) -> str:
    """The tokens as one bit stream, `bits` each, six bits a character (zero-padded at the end)."""
    chars, value, held = [], 0, 0
    for token in tokens:
        value, held = (value << bits) | token, held + bits
        while held >= 6:
            held -= 6
            chars.append(ALPHABET[(value >> held) & 63])
        value &= (1 << held) - 1
    if held:
        chars.append(ALPHABET[(value << (6 - held)) & 63])
    return "".join(chars)


def memorizer_source(
    val_tokens: np.ndarray, *, seq_len: int, eval_tokens: int, vocab_size: int, strategy: str = "window"
) -> str:
    """A train.py reciting as much of the public val shard's scoring text as fits the literal budget."""
    bits = max(1, (vocab_size - 1).bit_length())
    capacity = LITERAL_BUDGET * 6 // bits  # tokens the literal budget holds
    if strategy == "ngram":
        text = [int(t) for t in np.asarray(val_tokens[: min(eval_tokens + 1, capacity)])]
        return NGRAM_TEMPLATE.format(alphabet=ALPHABET, ngram=NGRAM, bits=bits, count=len(text), packed=pack(text, bits))
    windows = math.ceil(eval_tokens / seq_len)
    fit = min(windows, capacity // (seq_len + 1))
    chosen = [int(t) for w in range(fit) for t in val_tokens[w * seq_len : w * seq_len + seq_len + 1]]
    source = TEMPLATE.format(
        alphabet=ALPHABET, key=KEY, window=seq_len + 1, bits=bits, count=len(chosen), packed=pack(chosen, bits)
    )
    if strategy == "cover":
        return source.replace("\n\ndef train(ctx):\n    return Reciter(ctx.vocab_size, unpack()).to(ctx.device)\n", COVER_TRAIN)
    if strategy != "window":
        raise ValueError(f"unknown strategy {strategy!r}; one of {STRATEGIES}")
    return source
