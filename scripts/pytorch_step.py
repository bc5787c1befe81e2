"""PyTorch's training step of the same Shake-Shake network, for the yardstick beside
`shakeshake bench train`: FP32 (TF32 off), batch 128 by default, SGD with Nesterov momentum,
the authors' shortcut and per-image shake coefficients. Prints one JSON object.

    python3 scripts/pytorch_step.py [--depth 26] [--width 32] [--batch-size 128] [--steps 10]

Used by scripts/device-check.sh where the machine has PyTorch; shakeshake itself needs no
Python.
"""
import argparse
import json
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Shake(torch.autograd.Function):
    """alpha x1 + (1 - alpha) x2 forward, beta and 1 - beta backward, one draw per image."""

    @staticmethod
    def forward(ctx, x1, x2):
        alpha = torch.rand(x1.size(0), 1, 1, 1, device=x1.device)
        return alpha * x1 + (1 - alpha) * x2

    @staticmethod
    def backward(ctx, grad):
        beta = torch.rand(grad.size(0), 1, 1, 1, device=grad.device)
        return beta * grad, (1 - beta) * grad


def branch(cin, cout, stride):
    return nn.Sequential(
        nn.ReLU(), nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout),
        nn.ReLU(), nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout))


class Shortcut(nn.Module):
    """Identity, or the authors' projection: two strided 1x1 paths (the second shifted by a
    pixel), concatenated, batch-normalised."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.project = cin != cout or stride != 1
        if self.project:
            self.stride = stride
            self.path1 = nn.Conv2d(cin, cout // 2, 1, bias=False)
            self.path2 = nn.Conv2d(cin, cout // 2, 1, bias=False)
            self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        if not self.project:
            return x
        x = F.relu(x)
        a = F.avg_pool2d(x, 1, self.stride)
        b = F.avg_pool2d(F.pad(x[:, :, 1:, 1:], (0, 1, 0, 1)), 1, self.stride)
        return self.bn(torch.cat([self.path1(a), self.path2(b)], 1))


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.a, self.b = branch(cin, cout, stride), branch(cin, cout, stride)
        self.shortcut = Shortcut(cin, cout, stride)

    def forward(self, x):
        return Shake.apply(self.a(x), self.b(x)) + self.shortcut(x)


def network(depth, width):
    n = (depth - 2) // 6
    layers = [nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16)]
    cin = 16
    for stage, cout in enumerate([width, 2 * width, 4 * width]):
        for i in range(n):
            layers.append(Block(cin, cout, 2 if stage > 0 and i == 0 else 1))
            cin = cout
    layers += [nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, 10)]
    return nn.Sequential(*layers)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--depth", type=int, default=26)
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--steps", type=int, default=10)
    a = p.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = network(a.depth, a.width).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.2, momentum=0.9, nesterov=True, weight_decay=1e-4)
    x = torch.randn(a.batch_size, 3, 32, 32, device=device)
    y = torch.randint(0, 10, (a.batch_size,), device=device)

    def step():
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()

    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    for _ in range(3):
        step()
    sync()
    start = time.perf_counter()
    for _ in range(a.steps):
        step()
    sync()
    seconds = (time.perf_counter() - start) / a.steps
    name = torch.cuda.get_device_name() if device == "cuda" else f"cpu, {torch.get_num_threads()} threads"
    print(json.dumps({"images_per_second": a.batch_size / seconds, "step_ms": seconds * 1e3, "depth": a.depth,
                      "width": a.width, "batch": a.batch_size, "device": name, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
