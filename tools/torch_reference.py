"""PyTorch's side of the CLI parity checks: torchvision 0.14's resnet18 with the given weights, its ImageNet category
names, and the ImageNet eval transform (Resize(256), CenterCrop(224), ToTensor, Normalize)."""
import torch
import torchvision
from torchvision import transforms

CATEGORIES = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.meta["categories"]

EVAL_TRANSFORM = transforms.Compose([transforms.Resize(256), transforms.CenterCrop(224), transforms.ToTensor(),
                                     transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])])


def resnet18(weights):
    model = torchvision.models.resnet18()
    model.load_state_dict(torch.load(weights))
    return model.eval()
