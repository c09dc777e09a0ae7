"""A legitimate small model: one causal attention block, trained until the clock says stop."""
import torch
import torch.nn.functional as F

WIDTH = 32  # residual stream
BATCH_SIZE = 8  # sequences per step
LR = 3e-3  # AdamW learning rate


class Block(torch.nn.Module):
    def __init__(self, vocab_size):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab_size, WIDTH)
        self.qkv = torch.nn.Linear(WIDTH, 3 * WIDTH)
        self.norm = torch.nn.LayerNorm(WIDTH)
        self.head = torch.nn.Linear(WIDTH, vocab_size)
        self.register_buffer("scale", torch.tensor(1.0))  # a buffer, read but never written

    def forward(self, idx):
        x = self.embed(idx)  # (B, T, C)
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        x = x + F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.head(self.norm(x)) * self.scale  # (B, T, V)


def train(ctx):
    model = Block(ctx.vocab_size).to(ctx.device)
    model.register_forward_hook(lambda module, inputs, output: output.float())  # a stateless hook
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR)
    step = 0
    for x, y in ctx.batches(BATCH_SIZE, ctx.seq_len):
        if ctx.time_left() <= 0:
            break
        loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        ctx.report(step=step, loss=loss.item())
        step += 1
    return model
