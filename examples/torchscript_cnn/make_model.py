"""Defines a small CNN with batch norm in Python and saves it as TorchScript.

    /usr/bin/python3 make_model.py [OUT]      # OUT defaults to cnn.pt here

actortrain then trains as many copies as the experiment asks for, from C++,
each with its own initial weights drawn from its seed (docs/torchscript.md).
"""
import os
import sys

import torch
from torch import nn


class SmallCNN(nn.Module):
    def __init__(self, classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(4, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
            nn.MaxPool2d(2))
        self.classifier = nn.Linear(8 * 7 * 7, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "cnn.pt")
    torch.jit.script(SmallCNN()).save(out)
    print(f"saved {out}")
