"""Classifiers: fully connected nets (fc_net) and convolutional nets (cnn)."""
from .cnn import ConvNet, ThreeLayerConvNet
from .fc_net import FullyConnectedNet, TwoLayerNet

__all__ = ["TwoLayerNet", "FullyConnectedNet", "ThreeLayerConvNet", "ConvNet"]
