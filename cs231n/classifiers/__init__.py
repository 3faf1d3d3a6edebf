"""Classifiers: fully connected nets (fc_net), convolutional nets (cnn), residual nets (resnet)."""
from .cnn import ConvNet, ThreeLayerConvNet
from .fc_net import FullyConnectedNet, TwoLayerNet
from .resnet import ResNet

__all__ = ["TwoLayerNet", "FullyConnectedNet", "ThreeLayerConvNet", "ConvNet", "ResNet"]
