"""CNTK-style layers: factories that return callable layers owning their parameters, declarative
network specs (TOML/JSON) and model summaries.

>>> import minigraph as mg
>>> from minigraph import layers as L
>>> f = L.ConvolutionTranspose((3, 4), 128, activation=mg.relu)
>>> h = f(mg.input_variable((3, 480, 640)))
>>> h.shape, f.W.shape
((128, 482, 643), (3, 128, 3, 4))
"""
from .base import ACTIVATIONS, LAYER_TYPES, Layer, identity
from .conv import (
                   Convolution,
                   Convolution1D,
                   Convolution2D,
                   Convolution3D,
                   ConvolutionTranspose,
                   ConvolutionTranspose1D,
                   ConvolutionTranspose2D,
                   ConvolutionTranspose3D,
)
from .defaults import default_options, default_options_for
from .dense import Dense
from .misc import Activation, Dropout, Flatten, Identity, Reshape
from .normalization import BatchNormalization, LayerNormalization
from .pooling import AveragePooling, MaxPooling
from .sequential import Sequential
from .spec import dumps_toml, from_spec, layer_spec, load_spec, to_spec, write_spec
from .summary import print_summary, summary

__all__ = ["ACTIVATIONS", "LAYER_TYPES", "Activation", "AveragePooling", "BatchNormalization", "Convolution",
           "Convolution1D", "Convolution2D", "Convolution3D", "ConvolutionTranspose", "ConvolutionTranspose1D",
           "ConvolutionTranspose2D", "ConvolutionTranspose3D", "Dense", "Dropout", "Flatten", "Identity", "Layer",
           "LayerNormalization", "MaxPooling", "Reshape", "Sequential", "default_options", "default_options_for",
           "dumps_toml", "from_spec", "identity", "layer_spec", "load_spec", "print_summary", "summary", "to_spec",
           "write_spec"]
