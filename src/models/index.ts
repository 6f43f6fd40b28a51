// Importing this registers every model family. One import line per family file.
export * from "./options";
export * from "./registry";
export * from "./resnet_cifar";
import "./preact_resnet";
import "./resnet_imagenet";
import "./efficient_resnet";
import "./wide_resnet";
import "./resnext";
import "./densenet";
import "./mobilenet";
import "./efficientnet";
import "./speednet";
