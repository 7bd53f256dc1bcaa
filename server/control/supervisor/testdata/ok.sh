#!/bin/sh
echo "all fine"
